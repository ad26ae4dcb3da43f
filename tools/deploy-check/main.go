// deploy-check validates what deploy/ ships without a cluster, a Docker engine or the network:
//
//	deploy-check manifests [--json] < rendered.yaml   every object of a `helm template` output
//	deploy-check compose [--json] <compose.yaml>...    a Compose file, as `docker compose config` loads it
//
// With --json, the checked objects (a JSON array) or the normalised Compose model go to stdout, so
// tests can look into them without a YAML parser of their own; the summary goes to stderr.
//
// Manifests: each object is decoded strictly with client-go's scheme (the Kubernetes API types
// this client version knows), so an unknown or misspelt field, a wrong type or a duplicate key is
// an error, and a kind the scheme does not know is an error too. The Prometheus Operator's
// ServiceMonitor and PrometheusRule (CRDs, not in client-go) are decoded the same way with the
// operator's own Go types, and every PrometheusRule expression is parsed with Prometheus's PromQL
// parser. This is the part of kubeconform's check that needs no downloaded schemas: types and
// field names, not server-side validation (required fields, value ranges).
//
// Compose: compose-go (the loader of `docker compose`) loads the file, validates it against the
// Compose specification's JSON schema and resolves it; the normalised model is printed.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: deploy-check manifests < rendered.yaml | deploy-check compose <file>...")
		os.Exit(2)
	}
	args := os.Args[2:]
	asJSON := len(args) > 0 && args[0] == "--json"
	if asJSON {
		args = args[1:]
	}
	var err error
	switch os.Args[1] {
	case "manifests":
		err = checkManifests(os.Stdin, os.Stdout, asJSON)
	case "compose":
		err = checkCompose(args, os.Stdout, asJSON)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy-check: %v\n", err)
		os.Exit(1)
	}
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func checkManifests(in io.Reader, out io.Writer, asJSON bool) error {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		return err
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		return err
	}
	decoder := serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
	reader := yaml.NewYAMLReader(bufio.NewReader(in))
	counts := map[string]int{}
	var problems []string
	var objects []json.RawMessage
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var h header
		if err := sigsyaml.Unmarshal(doc, &h); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: not YAML: %v", i, err))
			continue
		}
		where := fmt.Sprintf("%s %s/%s", h.APIVersion, h.Kind, h.Metadata.Name)
		if h.APIVersion == "" || h.Kind == "" || h.Metadata.Name == "" {
			problems = append(problems, fmt.Sprintf("document %d (%s): apiVersion, kind and metadata.name are required", i, where))
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		if rule, ok := obj.(*monitoringv1.PrometheusRule); ok {
			problems = append(problems, checkRules(where, rule)...)
		}
		counts[h.APIVersion+" "+h.Kind]++
		if asJSON {
			j, err := sigsyaml.YAMLToJSON(doc)
			if err != nil {
				return err
			}
			objects = append(objects, j)
		}
	}
	kinds := make([]string, 0, len(counts))
	total := 0
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s x%d", k, n))
		total += n
	}
	sort.Strings(kinds)
	if len(problems) > 0 {
		return fmt.Errorf("%d of the objects do not validate:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	if total == 0 {
		return errors.New("no objects in the input")
	}
	summary := fmt.Sprintf("%d objects valid (strict decoding with client-go's scheme and the Prometheus Operator's types):\n  %s\n", total, strings.Join(kinds, "\n  "))
	if !asJSON {
		_, err := io.WriteString(out, summary)
		return err
	}
	fmt.Fprint(os.Stderr, summary)
	return json.NewEncoder(out).Encode(objects)
}

// The PromQL parser with the default functions (what a Prometheus server without feature flags accepts).
var promql = parser.NewParser(parser.Options{})

// checkRules parses every alerting or recording rule's expression with Prometheus's own parser.
func checkRules(where string, rule *monitoringv1.PrometheusRule) []string {
	var problems []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			if name == "" {
				problems = append(problems, fmt.Sprintf("%s: group %s: a rule without alert or record", where, g.Name))
			}
			if _, err := promql.ParseExpr(r.Expr.String()); err != nil {
				problems = append(problems, fmt.Sprintf("%s: rule %s: %v", where, name, err))
			}
		}
	}
	return problems
}

// stripComments drops whole-line YAML comments (helm template prints `# Source:` lines).
func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func checkCompose(files []string, out io.Writer, asJSON bool) error {
	if len(files) == 0 {
		return errors.New("compose: give at least one file")
	}
	opts, err := cli.NewProjectOptions(files, cli.WithName("clinical-ledger"), cli.WithOsEnv, cli.WithInterpolation(true))
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	names := project.ServiceNames()
	sort.Strings(names)
	summary := fmt.Sprintf("compose project %s valid: %d services (%s), %d volumes\n", project.Name, len(names), strings.Join(names, ", "), len(project.Volumes))
	var model []byte
	if asJSON {
		fmt.Fprint(os.Stderr, summary)
		model, err = project.MarshalJSON()
	} else {
		_, _ = io.WriteString(out, summary)
		model, err = project.MarshalYAML()
	}
	if err != nil {
		return err
	}
	_, err = out.Write(model)
	return err
}
