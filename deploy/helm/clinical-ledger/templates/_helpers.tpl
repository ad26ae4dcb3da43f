{{/* Names, labels and the one pod template every service shares. */}}

{{- define "cl.fullname" -}}
{{- if contains "clinical-ledger" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-clinical-ledger" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cl.name" -}}
{{- printf "%s-%s" (include "cl.fullname" .root) .component -}}
{{- end -}}

{{/* Labels of every object; components add cl.selector, the others cl.allLabels. */}}
{{- define "cl.labels" -}}
app.kubernetes.io/part-of: clinical-ledger
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cl.allLabels" -}}
{{ include "cl.labels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component (intake, ledger-writer, ledger-reader, consent, audit, portal). */}}
{{- define "cl.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "cl.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) | quote }}
{{- end -}}

{{- define "cl.configName" -}}
{{- printf "%s-config" (include "cl.fullname" .) -}}
{{- end -}}

{{/*
NATS authentication of one user: env and the pod's view of the NATS Secret, holding only that
user's password (or creds). Input: dict root, user.
*/}}
{{- define "cl.natsEnv" -}}
{{- if eq .root.Values.nats.auth "creds" }}
- { name: NATS_CREDS_FILE, value: /var/run/nats/{{ .user }}.creds }
{{- else }}
- { name: NATS_USER, value: {{ .user }} }
- { name: NATS_PASSWORD_FILE, value: /var/run/nats/{{ .user }}.password }
{{- end }}
{{- end -}}

{{- define "cl.natsVolume" -}}
- name: nats-auth
  secret:
    secretName: {{ .root.Values.secrets.names.nats }}
    defaultMode: 0440
    items:
      - { key: {{ printf "%s.%s" .user (ternary "creds" "password" (eq .root.Values.nats.auth "creds")) }}, path: {{ printf "%s.%s" .user (ternary "creds" "password" (eq .root.Values.nats.auth "creds")) }} }
{{- end -}}

{{- define "cl.mongoEnv" -}}
- name: MONGO_URL
  valueFrom: { secretKeyRef: { name: {{ .Values.secrets.names.mongo }}, key: MONGO_URL } }
{{- end -}}

{{/* The services' own token (role service), re-read by them when it changes. */}}
{{- define "cl.serviceTokenVolume" -}}
- name: service-token
  secret:
    secretName: {{ .Values.secrets.names.serviceToken }}
    defaultMode: 0440
    items: [{ key: service.jwt, path: service.jwt }]
{{- end -}}

{{- define "cl.authKeysVolume" -}}
{{- if .Values.secrets.names.authKeys }}
- name: auth-keys
  secret:
    secretName: {{ .Values.secrets.names.authKeys }}
    defaultMode: 0440
    items: [{ key: jwks.json, path: jwks.json }]
{{- end }}
{{- end -}}

{{- define "cl.authKeysMount" -}}
{{- if .Values.secrets.names.authKeys }}
- { name: auth-keys, mountPath: /var/run/auth, readOnly: true }
{{- end }}
{{- end -}}

{{- define "cl.extraEnv" -}}
{{- range $k, $v := . }}
- { name: {{ $k }}, value: {{ $v | toString | quote }} }
{{- end }}
{{- end -}}

{{/*
One service: Deployment, Service, PodDisruptionBudget and (when enabled) HorizontalPodAutoscaler.
Input: dict
  root       the chart's root context
  component  name suffix and component label (intake, ledger-writer, ...)
  program    SERVICE: which dist/services/<program> runs
  v          the component's values (replicas, resources, pdb, autoscaling, env)
  env        YAML list (string) of the component's own env
  volumes    YAML list (string) of its volumes
  mounts     YAML list (string) of its mounts
  ports      YAML list (string) of extra container ports (http is always there)
  svcPorts   YAML list (string) of extra Service ports
  strategy   optional Deployment strategy (YAML string)
*/}}
{{- define "cl.service" -}}
{{- $root := .root -}}
{{- $v := .v -}}
{{- $name := include "cl.name" . -}}
{{- $sel := include "cl.selector" . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "cl.labels" $root | nindent 4 }}
    {{- $sel | nindent 4 }}
    app.kubernetes.io/name: {{ .program }}
spec:
  {{- if not (and $v.autoscaling $v.autoscaling.enabled) }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with .strategy }}
  strategy:
    {{- . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "cl.labels" $root | nindent 8 }}
        {{- $sel | nindent 8 }}
        app.kubernetes.io/name: {{ .program }}
      annotations:
        # A new configuration rolls the pods.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $root.Values.topologySpread }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector: { matchLabels: { app.kubernetes.io/instance: {{ $root.Release.Name }}, app.kubernetes.io/component: {{ .component }} } }
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector: { matchLabels: { app.kubernetes.io/instance: {{ $root.Release.Name }}, app.kubernetes.io/component: {{ .component }} } }
      {{- end }}
      containers:
        - name: {{ .program }}
          image: {{ include "cl.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          env:
            - { name: SERVICE, value: {{ .program }} }
            - { name: SERVICE_NAME, value: {{ .program }} }
            - { name: HTTP_PORT, value: "8080" }
            {{- with (trim (default "" .env)) }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with (include "cl.extraEnv" $v.env | trim) }}
            {{- . | nindent 12 }}
            {{- end }}
          envFrom:
            - configMapRef: { name: {{ include "cl.configName" $root }} }
          ports:
            - { name: http, containerPort: 8080, protocol: TCP }
            {{- with (trim (default "" .ports)) }}
            {{- . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet: { path: /healthz, port: http }
            failureThreshold: {{ $root.Values.probes.startup.failureThreshold }}
            periodSeconds: {{ $root.Values.probes.startup.periodSeconds }}
          livenessProbe:
            httpGet: { path: /healthz, port: http }
            periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
            failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet: { path: /readyz, port: http }
            periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
            failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - { name: tmp, mountPath: /tmp }
            {{- with (trim (default "" .mounts)) }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with (include "cl.authKeysMount" $root | trim) }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: { sizeLimit: 64Mi }
        {{- with (trim (default "" .volumes)) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with (include "cl.authKeysVolume" $root | trim) }}
        {{- . | nindent 8 }}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "cl.labels" $root | nindent 4 }}
    {{- $sel | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- $sel | nindent 4 }}
  ports:
    - { name: http, port: 80, targetPort: http, protocol: TCP }
    {{- with (trim (default "" .svcPorts)) }}
    {{- . | nindent 4 }}
    {{- end }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "cl.labels" $root | nindent 4 }}
    {{- $sel | nindent 4 }}
spec:
  {{- toYaml $v.pdb | nindent 2 }}
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
{{- if and $v.autoscaling $v.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "cl.labels" $root | nindent 4 }}
    {{- $sel | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    # Scale down slowly: intake holds MLLP connections and audit live streams.
    scaleDown:
      stabilizationWindowSeconds: 300
      policies: [{ type: Pods, value: 1, periodSeconds: 60 }]
{{- end }}
{{- end -}}

{{/* Where each named volume is mounted, the same in every pod. Input: list of volume names. */}}
{{- define "cl.mounts" -}}
{{- $paths := dict "nats-auth" "/var/run/nats" "service-token" "/var/run/service-token" "pseudonyms" "/var/run/keys" "ledger-keys" "/var/run/ledger-keys" "verifier-keys" "/var/run/audit" -}}
{{- range . }}
- { name: {{ . }}, mountPath: {{ get $paths . }}, readOnly: true }
{{- end }}
{{- end -}}

{{/* The tenants' pseudonym secrets (intake and consent derive the same patient pseudonyms; audit pseudonymises a looked-up identifier with them and keeps nothing). */}}
{{- define "cl.pseudonymsVolume" -}}
- name: pseudonyms
  secret:
    secretName: {{ .Values.secrets.names.pseudonyms }}
    defaultMode: 0440
    items: [{ key: pseudonym-secrets.json, path: pseudonym-secrets.json }]
{{- end -}}

{{/*
The ledger's keys. The writer signs (signing.pem); a reader only verifies (verifier.keys) and
unwraps data keys for consent-gated reads (kek.key): it never holds the signing key.
Input: dict root, signing (bool).
*/}}
{{- define "cl.ledgerKeysVolume" -}}
- name: ledger-keys
  secret:
    secretName: {{ .root.Values.secrets.names.ledgerKeys }}
    defaultMode: 0440
    items:
      {{- /* The writer's secrets; a reader (LEDGER_ROLE=reader) gets the public keys only. */}}
      {{- if .signing }}
      - { key: signing.pem, path: signing.pem }
      - { key: kek.key, path: kek.key }
      {{- end }}
      - { key: verifier.keys, path: verifier.keys }
{{- end -}}

{{/* A Kubernetes memory quantity in MiB, rounded down (<n>Gi, <n>Mi, <n>G, <n>M or bytes). */}}
{{- define "cl.memoryMiB" -}}
{{- $q := toString . -}}
{{- if regexMatch "^[0-9]+Gi$" $q -}}{{ mul (trimSuffix "Gi" $q | atoi) 1024 }}
{{- else if regexMatch "^[0-9]+Mi$" $q -}}{{ trimSuffix "Mi" $q | atoi }}
{{- else if regexMatch "^[0-9]+G$" $q -}}{{ div (mul (trimSuffix "G" $q | atoi) 1000000000) 1048576 }}
{{- else if regexMatch "^[0-9]+M$" $q -}}{{ div (mul (trimSuffix "M" $q | atoi) 1000000) 1048576 }}
{{- else if regexMatch "^[0-9]+$" $q -}}{{ div ($q | atoi) 1048576 }}
{{- else -}}{{ fail (printf "memory limit %q: give it as <n>Gi, <n>Mi, <n>G, <n>M or bytes" $q) }}
{{- end -}}
{{- end -}}

{{/*
V8's old-space bound of one component in MiB: `percent` of its container's memory limit, so V8
collects before the kubelet kills the pod. Input: dict what (values path), v (its values), percent.
*/}}
{{- define "cl.heapMiB" -}}
{{- $limit := dig "resources" "limits" "memory" "" .v -}}
{{- if not $limit }}{{ fail (printf "%s.resources.limits.memory is required: the ledger's V8 heap bound (NODE_OPTIONS) is derived from it" .what) }}{{ end -}}
{{- if or (lt (int .percent) 10) (gt (int .percent) 90) }}{{ fail (printf "ledger.heapPercent %v: give 10-90 (percent of the memory limit)" .percent) }}{{ end -}}
{{- div (mul (include "cl.memoryMiB" $limit | int) (int .percent)) 100 -}}
{{- end -}}

{{/*
NODE_OPTIONS of one component (an env list entry), unless its own `env` sets NODE_OPTIONS.
Input: dict v (its values), heap (MiB), extra (more flags).
*/}}
{{- define "cl.nodeOptionsEnv" -}}
{{- if not (hasKey (default dict .v.env) "NODE_OPTIONS") }}
- { name: NODE_OPTIONS, value: {{ trim (printf "--max-old-space-size=%d %s" (int .heap) (default "" .extra)) | quote }} }
{{- end }}
{{- end -}}
