package check

import (
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const chartDir = "../helm/keyturn"

// render renders the chart as `helm install` would, with vals over values.yaml, and
// returns every object, decoded strictly: a field the Kubernetes API does not know, or a
// value of the wrong type, fails. Kinds outside the built-in API (a ServiceMonitor) come
// back unstructured.
func render(t *testing.T, vals map[string]any) (map[string]runtime.Object, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	rv, err := util.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: "sec", Namespace: "keyturn", IsInstall: true, Revision: 1}, common.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	files, err := engine.Render(chrt, rv)
	if err != nil {
		return nil, err
	}
	strict := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	objs := map[string]runtime.Object{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasSuffix(name, ".tpl") {
			continue
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---")) == "" {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: not YAML: %v\n%s", name, err, doc)
			}
			key := meta.Kind + "/" + meta.Metadata.Name
			if meta.APIVersion == "monitoring.coreos.com/v1" {
				u := &unstructured.Unstructured{}
				if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				objs[key] = u
				continue
			}
			obj, _, err := strict.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s (%s): not a valid Kubernetes object: %v\n%s", name, key, err, doc)
			}
			objs[key] = obj
		}
	}
	return objs, nil
}

func mustRender(t *testing.T, vals map[string]any) map[string]runtime.Object {
	t.Helper()
	objs, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return objs
}

func get[T runtime.Object](t *testing.T, objs map[string]runtime.Object, key string) T {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		keys := make([]string, 0, len(objs))
		for k := range objs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Fatalf("no %s among %v", key, keys)
	}
	v, ok := o.(T)
	if !ok {
		t.Fatalf("%s is a %T", key, o)
	}
	return v
}

func env(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// checkPod holds every Keyturn pod to the same rules: not root, no privilege escalation,
// read-only root filesystem, every capability dropped, resources declared, and every
// volume mount backed by a volume of the pod.
func checkPod(t *testing.T, what string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.SeccompProfile == nil {
		t.Errorf("%s: pod security context %+v, want non-root with a seccomp profile", what, psc)
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
		if v.Secret != nil && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0) {
			t.Errorf("%s: secret volume %s mode %v, want owner-only (fsGroup adds the group)", what, v.Name, v.Secret.DefaultMode)
		}
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s/%s: container security context %+v", what, c.Name, sc)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: no memory request or limit", what, c.Name)
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("%s/%s: mount %s has no volume", what, c.Name, m.Name)
			}
		}
	}
}

var base = map[string]any{"codecKey": map[string]any{"existingSecret": "keyturn-codec-key"}}

func TestChartDefaultsRenderAWorkerThatFollowsTheRules(t *testing.T) {
	objs := mustRender(t, base)
	dep := get[*appsv1.Deployment](t, objs, "Deployment/sec-keyturn-worker")
	checkPod(t, "worker", dep.Spec.Template.Spec)
	if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || *dep.Spec.Replicas != 1 {
		t.Errorf("worker on the file store: strategy %s, replicas %d; want Recreate, 1", dep.Spec.Strategy.Type, *dep.Spec.Replicas)
	}
	// The worker lets running activities finish for 45 s after SIGTERM (workerStopTimeout
	// in internal/cli/worker.go); the pod's grace must be longer.
	if g := dep.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 45 {
		t.Errorf("termination grace %v, want more than the worker's 45 s stop timeout", g)
	}
	if p := dep.Spec.Template.Spec.SecurityContext.FSGroupChangePolicy; p == nil || *p != corev1.FSGroupChangeOnRootMismatch {
		t.Errorf("fsGroupChangePolicy %v: a recursive change on every start makes the store's key group-readable", p)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Args, " ") != "worker --metrics-addr 0.0.0.0:9464" {
		t.Errorf("worker args %v", c.Args)
	}
	for _, name := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "KEYTURN_CODEC_KEY_FILE", "KEYTURN_INVENTORY", "KEYTURN_STORE_DIR", "KEYTURN_HOME"} {
		if _, ok := env(c, name); !ok {
			t.Errorf("worker lacks %s", name)
		}
	}
	if _, ok := env(c, "TEMPORAL_TLS_CLIENT_CERT_PATH"); ok {
		t.Error("TLS settings without temporal.tls.enabled")
	}
	cm := get[*corev1.ConfigMap](t, objs, "ConfigMap/sec-keyturn-inventory")
	if !strings.Contains(cm.Data["inventory.yaml"], "version: 1") {
		t.Errorf("inventory ConfigMap: %q", cm.Data["inventory.yaml"])
	}
	get[*corev1.PersistentVolumeClaim](t, objs, "PersistentVolumeClaim/sec-keyturn-store")
	pdb := get[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget/sec-keyturn-worker")
	if !selects(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
		t.Errorf("the PDB's selector %v does not select the worker's pods %v", pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels)
	}
	job := get[*batchv1.Job](t, objs, "Job/sec-keyturn-apply")
	checkPod(t, "apply job", job.Spec.Template.Spec)
	if strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ") != "apply --yes" || job.Annotations["helm.sh/hook"] != "post-install,post-upgrade" {
		t.Errorf("apply job: args %v, annotations %v", job.Spec.Template.Spec.Containers[0].Args, job.Annotations)
	}
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			t.Error("the apply job mounts the worker's ReadWriteOnce volume")
		}
	}
	for _, key := range []string{"Job/sec-keyturn-setup", "Deployment/sec-keyturn-codec-server", "ServiceMonitor/sec-keyturn-worker", "Secret/sec-keyturn-codec-key"} {
		if _, ok := objs[key]; ok {
			t.Errorf("%s rendered though it is off by default", key)
		}
	}
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

func TestChartWithEverythingOn(t *testing.T) {
	objs := mustRender(t, map[string]any{
		"temporal": map[string]any{
			"tls":    map[string]any{"enabled": true, "secretName": "temporal-mtls"},
			"apiKey": map[string]any{"secretName": "temporal-cloud", "key": "api-key"},
		},
		"codecKey": map[string]any{"create": true, "value": strings.Repeat("ab", 32) + "\n"},
		"store":    map[string]any{"persistence": map[string]any{"enabled": false}},
		"worker":   map[string]any{"replicas": 3, "env": []any{map[string]any{"name": "ORDERS_DB_ADMIN_PASSWORD", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "orders-db", "key": "password"}}}}},
		"metrics":  map[string]any{"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}}},
		"setupJob": map[string]any{"enabled": true},
		"codecServer": map[string]any{
			"enabled": true, "allowHosts": []any{"codec.example.com"}, "allowOrigins": []any{"https://temporal.example.com"},
			"jwks":        map[string]any{"url": "https://idp.example.com/jwks", "issuer": "https://idp.example.com/", "audience": "temporal-ui"},
			"tokenSecret": "codec-token", "tlsSecret": "codec-tls",
		},
	})
	dep := get[*appsv1.Deployment](t, objs, "Deployment/sec-keyturn-worker")
	checkPod(t, "worker", dep.Spec.Template.Spec)
	if *dep.Spec.Replicas != 3 || dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("a shared store: replicas %d, strategy %s", *dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if e, ok := env(c, "TEMPORAL_API_KEY"); !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "temporal-cloud" {
		t.Errorf("TEMPORAL_API_KEY %+v", e)
	}
	if e, ok := env(c, "TEMPORAL_TLS_CLIENT_CERT_PATH"); !ok || e.Value != "/etc/keyturn/temporal-tls/tls.crt" {
		t.Errorf("TLS client cert %+v", e)
	}
	if _, ok := env(c, "ORDERS_DB_ADMIN_PASSWORD"); !ok {
		t.Error("worker.env is not passed on")
	}
	sec := get[*corev1.Secret](t, objs, "Secret/sec-keyturn-codec-key")
	if string(sec.Data["codec.key"]) != strings.Repeat("ab", 32)+"\n" {
		t.Error("the codec key Secret does not hold the key given")
	}
	setupJob := get[*batchv1.Job](t, objs, "Job/sec-keyturn-setup")
	checkPod(t, "setup job", setupJob.Spec.Template.Spec)
	// Before install: only what exists then (Temporal's settings), none of the release's objects.
	if setupJob.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" || strings.Join(setupJob.Spec.Template.Spec.Containers[0].Args, " ") != "setup" {
		t.Errorf("setup job: hook %q, args %v", setupJob.Annotations["helm.sh/hook"], setupJob.Spec.Template.Spec.Containers[0].Args)
	}
	for _, v := range setupJob.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil || (v.Secret != nil && v.Secret.SecretName != "temporal-mtls") {
			t.Errorf("the setup job, which runs before the release's objects exist, mounts %s", v.Name)
		}
	}
	if _, ok := env(setupJob.Spec.Template.Spec.Containers[0], "KEYTURN_CODEC_KEY_FILE"); ok {
		t.Error("the setup job names a codec key file the release has not made yet")
	}
	if _, ok := objs["PersistentVolumeClaim/sec-keyturn-store"]; ok {
		t.Error("a store claim without persistence")
	}

	cs := get[*appsv1.Deployment](t, objs, "Deployment/sec-keyturn-codec-server")
	checkPod(t, "codec server", cs.Spec.Template.Spec)
	args := strings.Join(cs.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"codec-server", "--allow-host=codec.example.com", "--allow-origin=https://temporal.example.com",
		"--jwks-url=https://idp.example.com/jwks", "--jwt-issuer=https://idp.example.com/", "--jwt-audience=temporal-ui",
		"--token-file=/etc/keyturn/codec-token/token", "--tls-cert=/etc/keyturn/codec-tls/tls.crt"} {
		if !strings.Contains(args, want) {
			t.Errorf("codec server args lack %s: %s", want, args)
		}
	}
	if strings.Contains(args, "--plain-http") {
		t.Error("plain HTTP with a TLS secret")
	}
	svc := get[*corev1.Service](t, objs, "Service/sec-keyturn-codec-server")
	if !selects(svc.Spec.Selector, cs.Spec.Template.Labels) {
		t.Error("the codec server's Service selects no codec server pod")
	}
	sm := get[*unstructured.Unstructured](t, objs, "ServiceMonitor/sec-keyturn-worker")
	metricsSvc := get[*corev1.Service](t, objs, "Service/sec-keyturn-worker-metrics")
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if !selects(sel, metricsSvc.Labels) || sm.GetLabels()["release"] != "prom" {
		t.Errorf("the ServiceMonitor (selector %v, labels %v) does not find the metrics Service %v", sel, sm.GetLabels(), metricsSvc.Labels)
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 || eps[0].(map[string]any)["port"] != metricsSvc.Spec.Ports[0].Name {
		t.Fatalf("ServiceMonitor endpoints %v", eps)
	}
	// The alert rules select job="keyturn"; the operator would name the job after the Service.
	relabel, _, _ := unstructured.NestedSlice(eps[0].(map[string]any), "relabelings")
	if len(relabel) != 1 || relabel[0].(map[string]any)["targetLabel"] != "job" || relabel[0].(map[string]any)["replacement"] != "keyturn" {
		t.Errorf("ServiceMonitor relabelings %v, want job=keyturn", relabel)
	}
}

func TestChartRefusesWhatWouldNotWork(t *testing.T) {
	for name, tc := range map[string]struct {
		vals map[string]any
		want string
	}{
		"no codec key":          {map[string]any{}, "codecKey.existingSecret"},
		"create without key":    {map[string]any{"codecKey": map[string]any{"create": true}}, "codecKey.value is required"},
		"replicas on one PVC":   {map[string]any{"codecKey": base["codecKey"], "worker": map[string]any{"replicas": 2}}, "needs a shared store"},
		"TLS without secret":    {map[string]any{"codecKey": base["codecKey"], "temporal": map[string]any{"tls": map[string]any{"enabled": true}}}, "temporal.tls.secretName is required"},
		"codec server, no host": {map[string]any{"codecKey": base["codecKey"], "codecServer": map[string]any{"enabled": true, "tokenSecret": "t"}}, "codecServer.allowHosts is required"},
		"codec server, no auth": {map[string]any{"codecKey": base["codecKey"], "codecServer": map[string]any{"enabled": true, "allowHosts": []any{"h"}}}, "needs authentication"},
		"JWKS without audience": {map[string]any{"codecKey": base["codecKey"], "codecServer": map[string]any{"enabled": true, "allowHosts": []any{"h"}, "jwks": map[string]any{"url": "https://i/j", "issuer": "https://i/"}}}, "codecServer.jwks.audience are required"},
	} {
		_, err := render(t, tc.vals)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: render error %v, want %q", name, err, tc.want)
		}
	}
}

func TestChartLints(t *testing.T) {
	vals := map[string]any{"codecKey": base["codecKey"]}
	res := lint.RunAll(chartDir, vals, "keyturn")
	for _, m := range res.Messages {
		if m.Severity > 1 { // above info: warnings and errors
			t.Errorf("helm lint: %s", m)
		}
	}
}
