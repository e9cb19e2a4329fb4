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

{{/* Host names the MCP Service answers to (the endpoint rejects any other Host header). */}}
{{- define "gpudiag.mcpHosts" -}}
{{- $svc := printf "%s-mcp" .Release.Name -}}
{{ $svc }},{{ $svc }}.{{ .Release.Namespace }},{{ $svc }}.{{ .Release.Namespace }}.svc,{{ $svc }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/* A shutdown grace period that the kubelet's kill would cut short is a configuration error. */}}
{{- define "gpudiag.checkGrace" -}}
{{- if ge (int .grace) (int .termination) -}}
{{- fail (printf "%s.shutdownGraceSeconds (%v) must be below %s.terminationGracePeriodSeconds (%v): the kubelet kills the container when the termination grace period ends" .component .grace .component .termination) -}}
{{- end -}}
{{- end }}

{{/* A projected token lifetime, checked against what the API server accepts (600 s and up). */}}
{{- define "gpudiag.tokenExpiration" -}}
{{- $seconds := int64 .value -}}
{{- if or (ne (toString $seconds) (toString .value)) (lt $seconds 600) (gt $seconds 4294967296) -}}
{{- fail (printf "%s (%v) must be a whole number of seconds from 600 to 4294967296: the API server refuses projected tokens shorter than 10 minutes" .field .value) -}}
{{- end -}}
{{- $seconds -}}
{{- end }}

{{/* agent.tokenVerification, refused by name unless the agent accepts it. */}}
{{- define "gpudiag.tokenVerification" -}}
{{- if not (has . (list "auto" "local" "tokenreview")) -}}
{{- fail (printf "agent.tokenVerification (%v) must be auto, local or tokenreview" .) -}}
{{- end -}}
{{- . -}}
{{- end }}
