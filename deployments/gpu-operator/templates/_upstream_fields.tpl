{{/* Upstream ClusterPolicy fields a values section passes through as NVIDIA's chart does
(docs/comparison.md): hostNetwork and the v1.9-era container securityContext of any operand. */}}
{{- define "gpu-operator.operand-upstream" -}}
{{- if .hostNetwork }}
hostNetwork: true
{{- end }}
{{- with .securityContext }}
securityContext: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* driver: the Secret exposed as env, and the liveness/readiness probes' timings. */}}
{{- define "gpu-operator.driver-upstream" -}}
{{- with .secretEnv }}
secretEnv: {{ . | quote }}
{{- end }}
{{- with .livenessProbe }}
livenessProbe: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .readinessProbe }}
readinessProbe: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* dcgmExporter: hostPID, pod labels/UID on metrics (a regex string or a list, as upstream's
CRD types it: a list), HPC job mapping, Service annotations. */}}
{{- define "gpu-operator.dcgm-exporter-upstream" -}}
{{- range $key := list "hostPID" "enablePodLabels" "enablePodUID" }}
{{- if hasKey $ $key }}
{{ $key }}: {{ get $ $key }}
{{- end }}
{{- end }}
{{- with .podLabelAllowlistRegex }}
podLabelAllowlistRegex: {{ toYaml (ternary (list .) . (kindIs "string" .)) | nindent 2 }}
{{- end }}
{{- with .hpcJobMapping }}
hpcJobMapping: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .annotations }}
annotations: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end }}
