// Package check holds the deployment's tests: the Helm chart in deploy/helm/keyturn is
// rendered with Helm's own engine and every object decoded strictly against the
// Kubernetes API types, and the Compose stack in deploy/compose is loaded and validated by
// the Compose specification's library. It is a module of its own so that Helm's and
// Kubernetes' dependencies stay out of Keyturn's build.
package check
