{{/* Labels every object carries. */}}
{{- define "gpudiag.labels" -}}
app.kubernetes.io/name: gpudiag
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The agent pods' selector labels; the operator's --agent-selector is built from the same. */}}
{{- define "gpudiag.agentSelectorLabels" -}}
app.kubernetes.io/name: gpudiag
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "gpudiag.operatorSelectorLabels" -}}
app.kubernetes.io/name: gpudiag
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "gpudiag.operatorServiceAccount" -}}{{ .Release.Name }}-operator{{- end }}
