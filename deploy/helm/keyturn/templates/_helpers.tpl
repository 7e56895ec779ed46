{{/* The release's base name for every object. */}}
{{- define "keyturn.fullname" -}}
{{- printf "%s-keyturn" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object; component names the part (worker, codec-server, ...). */}}
{{- define "keyturn.labels" -}}
app.kubernetes.io/name: keyturn
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "keyturn.selector" -}}
app.kubernetes.io/name: keyturn
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "keyturn.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Secret holding codec.key. */}}
{{- define "keyturn.codecKeySecret" -}}
{{- if .Values.codecKey.create -}}
{{ include "keyturn.fullname" . }}-codec-key
{{- else -}}
{{ required "codecKey.existingSecret (a Secret holding codec.key) or codecKey.create with codecKey.value is required: payloads are encrypted" .Values.codecKey.existingSecret }}
{{- end -}}
{{- end -}}

{{/* Pod security: non-root, no privilege escalation, read-only root filesystem. */}}
{{- define "keyturn.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "keyturn.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* How every Keyturn process reaches Temporal and its files. */}}
{{- define "keyturn.env" -}}
- name: TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
{{- if .Values.temporal.tls.enabled }}
- name: TEMPORAL_TLS_CLIENT_CERT_PATH
  value: /etc/keyturn/temporal-tls/tls.crt
- name: TEMPORAL_TLS_CLIENT_KEY_PATH
  value: /etc/keyturn/temporal-tls/tls.key
- name: TEMPORAL_TLS_SERVER_CA_CERT_PATH
  value: /etc/keyturn/temporal-tls/ca.crt
{{- with .Values.temporal.tls.serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if .Values.temporal.apiKey.secretName }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.temporal.apiKey.secretName }}
      key: {{ .Values.temporal.apiKey.key }}
{{- end }}
- name: KEYTURN_HOME
  value: /var/lib/keyturn
- name: KEYTURN_STORE_DIR
  value: /var/lib/keyturn/store
- name: KEYTURN_INVENTORY
  value: /etc/keyturn/inventory/inventory.yaml
- name: KEYTURN_CODEC_KEY_FILE
  value: /etc/keyturn/codec/codec.key
{{- with .Values.worker.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "keyturn.volumeMounts" -}}
- name: inventory
  mountPath: /etc/keyturn/inventory
  readOnly: true
- name: codec-key
  mountPath: /etc/keyturn/codec
  readOnly: true
- name: state
  mountPath: /var/lib/keyturn
- name: tmp
  mountPath: /tmp
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  mountPath: /etc/keyturn/temporal-tls
  readOnly: true
{{- end }}
{{- with .Values.worker.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes for keyturn.volumeMounts. Called with (dict "root" $ "store" true) by the
worker, whose state is the store's claim when it persists; the jobs keep no state. */}}
{{- define "keyturn.volumes" -}}
{{- $ := .root -}}
- name: inventory
  configMap:
    name: {{ include "keyturn.fullname" $ }}-inventory
- name: codec-key
  secret:
    secretName: {{ include "keyturn.codecKeySecret" $ }}
    defaultMode: 0400
- name: state
{{- if and .store $.Values.store.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "keyturn.fullname" $ }}-store
{{- else }}
  emptyDir: {}
{{- end }}
- name: tmp
  emptyDir: {}
{{- if $.Values.temporal.tls.enabled }}
- name: temporal-tls
  secret:
    secretName: {{ required "temporal.tls.secretName is required with temporal.tls.enabled" $.Values.temporal.tls.secretName }}
    defaultMode: 0400
{{- end }}
{{- with $.Values.worker.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}
