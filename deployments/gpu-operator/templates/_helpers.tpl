{{/* Labels every object of the release carries. */}}
{{- define "gpu-operator.labels" -}}
app.kubernetes.io/name: gpu-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Our one image: operator.repository/image:version (version defaults to appVersion). */}}
{{- define "gpu-operator.image" -}}
{{- printf "%s/%s:%s" .Values.operator.repository .Values.operator.image (.Values.operator.version | default .Chart.AppVersion) -}}
{{- end }}

{{/*
The image fields of an operand section in the ClusterPolicy.
  - nothing set: no fields; the operator falls back to its *_IMAGE env, i.e. our image.
  - repository, image and/or version set: NVIDIA's repository/image fill the gaps, so an
    upstream `--set toolkit.version=v1.20.0` runs nvcr.io/nvidia/k8s/container-toolkit:v1.20.0,
    as it would upstream.
Call with (dict "v" .Values.toolkit "repository" "nvcr.io/nvidia/k8s" "image" "container-toolkit"
"version" "v1.20.0"): NVIDIA's defaults of v26.7.0.
*/}}
{{- define "gpu-operator.operand-image" -}}
{{- if or .v.repository .v.image .v.version }}
repository: {{ .v.repository | default .repository | quote }}
image: {{ .v.image | default .image | quote }}
version: {{ .v.version | default .version | quote }}
{{- end }}
{{- with .v.imagePullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- with .v.imagePullSecrets }}
imagePullSecrets: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The common fields of an operand section: enabled, env, args, resources. */}}
{{- define "gpu-operator.operand-common" -}}
{{- if hasKey . "enabled" }}
enabled: {{ .enabled }}
{{- end }}
{{- with .env }}
env: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .args }}
args: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .resources }}
resources: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end }}
