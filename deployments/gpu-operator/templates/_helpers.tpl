{{/* Labels every object of the release carries. */}}
{{- define "gpu-operator.labels" -}}
app.kubernetes.io/name: gpu-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Images: see _images.tpl. */}}

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
{{- include "gpu-operator.operand-upstream" . }}
{{- end }}
