import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { workspaceRoot } from '@clinical-ledger/testing';
import { deployCheckBinary, helmBinary, KUBE_VERSION, runTool } from './tools';

// A cold Go cache builds Helm and deploy-check first (minutes on two busy cores).
jest.setTimeout(30 * 60_000);

const root = workspaceRoot();
const chart = join(root, 'deploy', 'helm', 'clinical-ledger');
const ciValues = join(chart, 'ci', 'production-values.yaml');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface Container {
  name: string;
  command?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  startupProbe?: { httpGet?: { path: string } };
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: { key: string }[] };
  configMap?: { name: string };
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
}
const podOf = (o: K8sObject) => (o.spec as { template: { spec: PodSpec } }).template.spec;

describe('the Helm chart (helm lint, helm template, strict schema check of every object)', () => {
  let helm: string;
  let check: string;
  let objects: K8sObject[];
  const template = (...args: string[]) => runTool(helm, ['template', 'rel', chart, '--namespace', 'clinical-ledger', '--kube-version', KUBE_VERSION, ...args]);

  beforeAll(async () => {
    [helm, check] = await Promise.all([helmBinary(), deployCheckBinary()]);
    const rendered = await template('-f', ciValues);
    expect(rendered.stderr).toBe('');
    const checked = await runTool(check, ['manifests', '--json'], { input: rendered.stdout });
    if (checked.code !== 0) throw new Error(checked.stderr);
    objects = JSON.parse(checked.stdout) as K8sObject[];
  });

  const find = (kind: string, name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) throw new Error(`no ${kind} ${name} in the rendered chart`);
    return o;
  };
  const deployments = () => objects.filter((o) => o.kind === 'Deployment');

  it('passes helm lint --strict', async () => {
    const lint = await runTool(helm, ['lint', chart, '--strict', '--kube-version', KUBE_VERSION, '-f', ciValues]);
    expect(lint.stdout + lint.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(lint.code).toBe(0);
  });

  it('renders the four services and the patient app, each with probes, resources, a disruption budget; HPAs for intake, audit and portal', () => {
    expect(deployments().map((d) => d.metadata.name).sort()).toEqual(
      ['audit', 'consent', 'intake', 'ledger-reader', 'ledger-writer', 'portal'].map((c) => `rel-clinical-ledger-${c}`),
    );
    for (const d of deployments()) {
      const [c] = podOf(d).containers;
      expect([d.metadata.name, c.startupProbe?.httpGet?.path, c.livenessProbe?.httpGet?.path, c.readinessProbe?.httpGet?.path]).toEqual([d.metadata.name, '/healthz', '/healthz', '/readyz']);
      expect(c.resources?.requests?.['cpu'] && c.resources?.requests?.['memory'] && c.resources?.limits?.['memory']).toBeTruthy();
      find('PodDisruptionBudget', d.metadata.name);
    }
    const hpas = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler').map((o) => o.metadata.name).sort();
    expect(hpas).toEqual(['rel-clinical-ledger-audit', 'rel-clinical-ledger-intake', 'rel-clinical-ledger-portal']);
    expect(objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata.name)).toContain('rel-clinical-ledger-default-deny');
  });

  it('gives every pod only its own secrets: its NATS password, and the signing key and the KEK to the writer alone', () => {
    const secretKeys = (d: K8sObject) =>
      Object.fromEntries((podOf(d).volumes ?? []).filter((v) => v.secret).map((v) => [v.secret?.secretName, (v.secret?.items ?? []).map((i) => i.key).sort()]));
    const name = (c: string) => `rel-clinical-ledger-${c}`;
    expect(secretKeys(find('Deployment', name('ledger-writer')))).toEqual({
      'clinical-ledger-nats': ['ledger.password'],
      'clinical-ledger-service-token': ['service.jwt'],
      'clinical-ledger-ledger-keys': ['kek.key', 'signing.pem', 'verifier.keys'],
    });
    expect(secretKeys(find('Deployment', name('ledger-reader')))['clinical-ledger-ledger-keys']).toEqual(['verifier.keys']);
    expect(secretKeys(find('Deployment', name('intake')))).toEqual({
      'clinical-ledger-nats': ['intake.password'],
      'clinical-ledger-service-token': ['service.jwt'],
      'clinical-ledger-pseudonyms': ['pseudonym-secrets.json'],
    });
    expect(secretKeys(find('Deployment', name('consent')))['clinical-ledger-nats']).toEqual(['consent.password']);
    expect(secretKeys(find('Deployment', name('audit')))['clinical-ledger-nats']).toEqual(['audit.password']);
    // Audit reads the chain through the readers (verify jobs, rebuilds) and pseudonymises looked-up identifiers.
    const auditEnv = Object.fromEntries((podOf(find('Deployment', name('audit'))).containers[0].env ?? []).map((e) => [e.name, e.value]));
    expect(auditEnv).toMatchObject({ AUDIT_LEDGER_URL: 'http://rel-clinical-ledger-ledger-reader', AUDIT_PSEUDONYM_SECRETS_FILE: '/var/run/keys/pseudonym-secrets.json' });
    expect(secretKeys(find('Deployment', name('audit')))['clinical-ledger-pseudonyms']).toEqual(['pseudonym-secrets.json']);
    expect(secretKeys(find('Deployment', name('portal')))).toEqual({});
    // One writer per chain until the ledger leases chains: Recreate, one replica.
    const writer = find('Deployment', name('ledger-writer')).spec as { replicas: number; strategy: { type: string } };
    expect([writer.replicas, writer.strategy.type]).toEqual([1, 'Recreate']);
    const readerEnv = podOf(find('Deployment', name('ledger-reader'))).containers[0].env ?? [];
    expect(readerEnv.find((e) => e.name === 'LEDGER_ROLE')?.value).toBe('reader');
    expect(readerEnv.some((e) => e.name === 'LEDGER_SIGNING_KEY_FILE' || e.name === 'LEDGER_KEK_FILE')).toBe(false);
  });

  it('runs `ledgerctl streams init` as a pre-install/pre-upgrade hook, as the NATS operator, at R3; services may not manage streams', () => {
    const job = find('Job', 'rel-clinical-ledger-streams-init');
    expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    const [c] = podOf(job).containers;
    expect(c.command).toEqual(['node', 'dist/tools/ledgerctl/src/main.js', 'streams', 'init']);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ NATS_USER: 'operator', NATS_PASSWORD_FILE: '/var/run/nats/operator.password', NATS_STREAM_REPLICAS: '3' });
    expect((podOf(job).volumes ?? [])[0].secret?.items?.map((i) => i.key)).toEqual(['operator.password']);
    expect(find('ConfigMap', 'rel-clinical-ledger-config').data).toMatchObject({ NATS_MANAGE_STREAMS: 'false', NATS_STREAM_REPLICAS: '3' });
  });

  it('alerts on the five conditions (and a chain without a writer under leases), with metric names the services and the NATS exporter really export', () => {
    const rule = find('PrometheusRule', 'rel-clinical-ledger').spec as { groups: { rules: { alert: string; expr: string }[] }[] };
    const rules = rule.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'ClinicalLedgerWitnessQuorumLost',
        'ClinicalLedgerChainWriterMissing',
        'ClinicalLedgerChainWithoutWriter',
        'ClinicalLedgerDeadLettersGrowing',
        'ClinicalLedgerVerificationAlert',
        'ClinicalLedgerConsumerLag',
      ]),
    );
    // Every service metric an alert reads is registered somewhere in services/ (MetricsService).
    const registered = new Set<string>();
    const scan = (dir: string): void => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (statSync(p).isDirectory()) {
          if (f !== 'node_modules' && f !== 'web') scan(p);
        } else if (p.endsWith('.ts') && !p.endsWith('.spec.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/\b(?:metrics|metric)\.(?:counter|gauge|histogram)\(\s*'([a-z_]+)'/g)) registered.add(m[1]);
        }
      }
    };
    scan(join(root, 'services'));
    const used = new Set(rules.flatMap((r) => [...r.expr.matchAll(/\b((?:ledger|audit|intake|consent)_[a-z_]+)\b/g)].map((m) => m[1])));
    expect(used.size).toBeGreaterThanOrEqual(5);
    expect([...used].filter((m) => !registered.has(m))).toEqual([]);
    // The NATS chart's prometheus-nats-exporter (-prefix=nats -jsz=all) names.
    const nats = new Set(rules.flatMap((r) => [...r.expr.matchAll(/\b(nats_[a-z_]+)\b/g)].map((m) => m[1])));
    expect([...nats].sort()).toEqual(['nats_consumer_num_pending', 'nats_stream_total_messages']);
  });

  it('renders valid objects with the other switches too: JWT-account NATS creds, a local JWKS, no NetworkPolicies or monitoring', async () => {
    const r = await template('-f', ciValues, '--set', 'nats.auth=creds', '--set', 'secrets.names.authKeys=idp-jwks', '--set', 'networkPolicy.enabled=false', '--set', 'monitoring.serviceMonitor.enabled=false', '--set', 'monitoring.prometheusRule.enabled=false', '--set', 'streamsInit.consumers=false');
    const checked = await runTool(check, ['manifests', '--json'], { input: r.stdout });
    expect(checked.stderr).toMatch(/objects valid/);
    const objs = JSON.parse(checked.stdout) as K8sObject[];
    expect(objs.filter((o) => ['NetworkPolicy', 'ServiceMonitor', 'PrometheusRule'].includes(o.kind))).toEqual([]);
    const intake = podOf(objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'rel-clinical-ledger-intake') as K8sObject);
    expect(intake.containers[0].env?.find((e) => e.name === 'NATS_CREDS_FILE')?.value).toBe('/var/run/nats/intake.creds');
    expect(intake.volumes?.find((v) => v.name === 'nats-auth')?.secret?.items?.map((i) => i.key)).toEqual(['intake.creds']);
    expect(intake.volumes?.find((v) => v.name === 'auth-keys')?.secret?.secretName).toBe('idp-jwks');
    const config = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rel-clinical-ledger-config') as K8sObject;
    expect([config.data?.['AUTH_JWKS_FILE'], config.data?.['AUTH_JWKS_URL']]).toEqual(['/var/run/auth/jwks.json', undefined]);
    const job = podOf(objs.find((o) => o.kind === 'Job') as K8sObject).containers[0];
    expect(job.command?.slice(-1)).toEqual(['--no-consumers']);
  });

  it('the schema check refuses a misspelt field and an alert expression PromQL cannot parse', async () => {
    const rendered = (await template('-f', ciValues)).stdout;
    const misspelt = await runTool(check, ['manifests'], { input: rendered.replace('revisionHistoryLimit: 5', 'revisionHistoryLimt: 5') });
    expect(misspelt.code).toBe(1);
    expect(misspelt.stderr).toMatch(/apps\/v1 Deployment\/rel-clinical-ledger-\S+: strict decoding error: unknown field "spec.revisionHistoryLimt"/);
    const badRule = await runTool(check, ['manifests'], { input: rendered.replace('> max(nats_stream_total_messages', '> max(nats_stream_total_messages{') });
    expect(badRule.code).toBe(1);
    expect(badRule.stderr).toMatch(/PrometheusRule\/rel-clinical-ledger: rule ClinicalLedgerDeadLettersGrowing: .*parse error/);
  });

  it('refuses to render without the keys the auditor and the patient app pin, a second writer without leases, or a Mongo URL without w=majority', async () => {
    // The chart's defaults name no keys: it renders nothing until the operator gives them.
    const noAuditKeys = await template('--set', 'portal.enabled=false');
    expect(noAuditKeys.code).toBe(1);
    expect(noAuditKeys.stderr).toMatch(/audit\.verifierKeys: give the ledger verifier keys the auditor trusts/);
    const noPortalKeys = await template('--set', 'audit.verifierKeys[0]=ledger.example+01020304+AAAA');
    expect(noPortalKeys.stderr).toMatch(/portal\.hospitalKeys: give the hospital's checkpoint verifier keys the patient app pins/);
    const twoWriters = await template('-f', ciValues, '--set', 'ledger.writer.replicas=2');
    expect(twoWriters.stderr).toMatch(/ledger\.writer\.replicas > 1 needs per-chain leases/);
    const weakMongo = await template('-f', ciValues, '--set', 'secrets.data.mongo.MONGO_URL=mongodb://mongo-0:27017/?replicaSet=rs0');
    expect(weakMongo.stderr).toMatch(/must ask for write concern majority \(w=majority\)/);
    const noReplicaSet = await template('-f', ciValues, '--set', 'secrets.data.mongo.MONGO_URL=mongodb://mongo-0:27017/?w=majority');
    expect(noReplicaSet.stderr).toMatch(/must name the replica set/);

    // With a leasing ledger: several writers, rolled one at a time.
    const leased = await template('-f', ciValues, '--set', 'ledger.writer.leases=true', '--set', 'ledger.writer.replicas=3', '--show-only', 'templates/ledger.yaml');
    expect(leased.code).toBe(0);
    expect(leased.stdout).toMatch(/name: rel-clinical-ledger-ledger-writer[\s\S]*?replicas: 3[\s\S]*?type: RollingUpdate/);
  });

  it('with ledger.writer.leases: the writers run LEDGER_LEASES with the pod name as replica id; streams init makes the lease bucket and no shared consumer', async () => {
    const rendered = await template('-f', ciValues, '--set', 'ledger.writer.leases=true', '--set', 'ledger.writer.replicas=2', '--set', 'ledger.writer.leaseTtlMs=6000');
    expect(rendered.stderr).toBe('');
    const checked = await runTool(check, ['manifests', '--json'], { input: rendered.stdout });
    if (checked.code !== 0) throw new Error(checked.stderr);
    const leased = JSON.parse(checked.stdout) as K8sObject[];
    const name = (c: string) => `rel-clinical-ledger-${c}`;
    const get = (kind: string, n: string) => leased.find((x) => x.kind === kind && x.metadata.name === n) as K8sObject;
    const writer = get('Deployment', name('ledger-writer'));
    expect((writer.spec as { strategy: { type: string } }).strategy.type).toBe('RollingUpdate');
    type Env = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
    const env = (podOf(writer).containers[0].env ?? []) as Env[];
    const byName = (n: string) => env.filter((e) => e.name === n);
    expect(byName('LEDGER_LEASES')).toEqual([{ name: 'LEDGER_LEASES', value: 'true' }]);
    expect(byName('LEDGER_LEASE_TTL_MS')).toEqual([{ name: 'LEDGER_LEASE_TTL_MS', value: '6000' }]);
    expect(byName('LEDGER_REPLICA_ID')).toEqual([{ name: 'LEDGER_REPLICA_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]);
    // The ack wait follows the lease TTL unless set: a killed writer's pulled events come back as its chains move.
    expect(byName('LEDGER_ACK_WAIT_MS')).toEqual([{ name: 'LEDGER_ACK_WAIT_MS', value: '6000' }]);
    const tuned = await template('-f', ciValues, '--set', 'ledger.writer.leases=true', '--set', 'ledger.writer.ackWaitMs=8000', '--show-only', 'templates/ledger.yaml');
    expect(tuned.stdout).toMatch(/name: LEDGER_ACK_WAIT_MS, value: "8000"/);
    // Readers hold no leases.
    expect((podOf(get('Deployment', name('ledger-reader'))).containers[0].env ?? []).some((e) => e.name.startsWith('LEDGER_LEASE'))).toBe(false);
    const job = leased.find((x) => x.kind === 'Job' && /streams-init/.test(x.metadata.name)) as K8sObject;
    const init = podOf(job).containers[0] as { command?: string[]; env?: Env[] };
    expect(init.command).toContain('--leases');
    expect(init.env?.find((e) => e.name === 'LEDGER_LEASE_TTL_MS')?.value).toBe('6000');
  });

  it("bounds the ledger pods' V8 heap by their memory limits, and gives a writer's receipt caches one budget within it", async () => {
    const name = (c: string) => `rel-clinical-ledger-${c}`;
    const envOf = (d: K8sObject) => (podOf(d).containers[0].env ?? []).filter((e) => ['NODE_OPTIONS', 'LEDGER_RECEIPT_CACHE_MB'].includes(e.name));
    // values.yaml: the writer's limit 1Gi, a reader's 512Mi, half of each for V8's old space.
    expect(envOf(find('Deployment', name('ledger-writer')))).toEqual([
      { name: 'LEDGER_RECEIPT_CACHE_MB', value: '64' },
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=512' },
    ]);
    expect(envOf(find('Deployment', name('ledger-reader')))).toEqual([{ name: 'NODE_OPTIONS', value: '--max-old-space-size=256' }]);
    const rendered = async (...set: string[]) => {
      const r = await template('-f', ciValues, ...set.flatMap((s) => ['--set', s]));
      const checked = await runTool(check, ['manifests', '--json'], { input: r.stdout });
      if (r.code !== 0 || checked.code !== 0) throw new Error(r.stderr + checked.stderr);
      const objs = JSON.parse(checked.stdout) as K8sObject[];
      return (c: string) => envOf(objs.find((o) => o.kind === 'Deployment' && o.metadata.name === name(c)) as K8sObject);
    };
    // The heap follows the limit (3G is 2,861 MiB; 60 % of it), with the flags given; a pod's own NODE_OPTIONS wins.
    const sized = await rendered('ledger.writer.resources.limits.memory=3G', 'ledger.heapPercent=60', 'ledger.nodeOptions=--max-semi-space-size=8', 'ledger.reader.env.NODE_OPTIONS=--max-old-space-size=300');
    expect(sized('ledger-writer')).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-old-space-size=1716 --max-semi-space-size=8' });
    expect(sized('ledger-reader')).toEqual([{ name: 'NODE_OPTIONS', value: '--max-old-space-size=300' }]);
    // A budget over a quarter of the writer's heap, no memory limit, or a limit the chart cannot read: refused.
    const tooBig = await template('-f', ciValues, '--set', 'ledger.writer.receiptCacheMiB=200');
    expect(tooBig.code).toBe(1);
    expect(tooBig.stderr).toMatch(/ledger\.writer\.receiptCacheMiB 200: give 1 to a quarter of the writer's heap \(512 MiB/);
    const noLimit = await template('-f', ciValues, '--set', 'ledger.reader.resources.limits=null');
    expect(noLimit.stderr).toMatch(/ledger\.reader\.resources\.limits\.memory is required/);
    const odd = await template('-f', ciValues, '--set', 'ledger.writer.resources.limits.memory=1.5Gi');
    expect(odd.stderr).toMatch(/memory limit "1\.5Gi": give it as/);
  });
});
