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
# Only when the volume's root does not already belong to fsGroup: a recursive change on
# every start would make the store's and the audit trail's key files group-readable, and
# Keyturn refuses those.
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "keyturn.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* How every Keyturn process reaches Temporal. */}}
{{- define "keyturn.temporalEnv" -}}
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
{{- end -}}

{{/* The worker's and the apply job's environment: Temporal, then Keyturn's files. */}}
{{- define "keyturn.env" -}}
{{ include "keyturn.temporalEnv" . }}
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

{{/* What every Keyturn pod mounts: its state (home), /tmp, and Temporal's TLS files. */}}
{{- define "keyturn.baseMounts" -}}
- name: state
  mountPath: /var/lib/keyturn
- name: tmp
  mountPath: /tmp
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  mountPath: /etc/keyturn/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* The worker's and the apply job's mounts: the base, the inventory and the codec key. */}}
{{- define "keyturn.volumeMounts" -}}
- name: inventory
  mountPath: /etc/keyturn/inventory
  readOnly: true
- name: codec-key
  mountPath: /etc/keyturn/codec
  readOnly: true
{{ include "keyturn.baseMounts" . }}
{{- with .Values.worker.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes for keyturn.baseMounts. Called with (dict "root" $ "store" true) by the
worker, whose state is the store's claim when it persists; the jobs keep no state. */}}
{{- define "keyturn.baseVolumes" -}}
{{- $ := .root -}}
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
{{- end -}}

{{/* Volumes for keyturn.volumeMounts, called as keyturn.baseVolumes is. */}}
{{- define "keyturn.volumes" -}}
{{- $ := .root -}}
- name: inventory
  configMap:
    name: {{ include "keyturn.fullname" $ }}-inventory
- name: codec-key
  secret:
    secretName: {{ include "keyturn.codecKeySecret" $ }}
    defaultMode: 0400
{{ include "keyturn.baseVolumes" . }}
{{- with $.Values.worker.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A hook Job running one keyturn command: (dict "root" $ "name" ... "args" (list ...)
"hook" "post-install,..." "full" bool). full gives it the worker's files (inventory,
codec key); otherwise it has Temporal's settings only. It never mounts the store's claim. */}}
{{- define "keyturn.job" -}}
{{- $ := .root -}}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "keyturn.fullname" $ }}-{{ .name }}
  labels:
    {{- include "keyturn.labels" (dict "root" $ "component" .name) | nindent 4 }}
  annotations:
    helm.sh/hook: {{ .hook }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: 3
  template:
    metadata:
      labels:
        {{- include "keyturn.selector" (dict "root" $ "component" .name) | nindent 8 }}
    spec:
      restartPolicy: Never
      securityContext:
        {{- include "keyturn.podSecurityContext" $ | nindent 8 }}
      containers:
        - name: {{ .name }}
          image: {{ include "keyturn.image" $ }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          args: {{ toJson .args }}
          env:
            {{- if .full }}
            {{- include "keyturn.env" $ | nindent 12 }}
            {{- else }}
            {{- include "keyturn.temporalEnv" $ | nindent 12 }}
            {{- end }}
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {memory: 256Mi}
          securityContext:
            {{- include "keyturn.containerSecurityContext" $ | nindent 12 }}
          volumeMounts:
            {{- if .full }}
            {{- include "keyturn.volumeMounts" $ | nindent 12 }}
            {{- else }}
            {{- include "keyturn.baseMounts" $ | nindent 12 }}
            {{- end }}
      volumes:
        {{- if .full }}
        {{- include "keyturn.volumes" (dict "root" $ "store" false) | nindent 8 }}
        {{- else }}
        {{- include "keyturn.baseVolumes" (dict "root" $ "store" false) | nindent 8 }}
        {{- end }}
{{- end -}}
