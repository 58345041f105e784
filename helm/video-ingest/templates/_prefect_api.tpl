{{/*
How the chart's own pods reach the Prefect API: its URL and the credentials
they send, as env.
*/}}

{{/*
The Prefect API every component talks to: the in-chart server's Service
when server.enabled, else prefect.apiUrl (video-ingest.validate.apiUrl
fails on an ambiguous or missing setting).
*/}}
{{- define "video-ingest.apiUrl" -}}
{{- include "video-ingest.validate.apiUrl" . }}
{{- if .Values.server.enabled }}
{{- printf "http://%s.%s.svc:%d/api" (include "video-ingest.serverName" .) .Release.Namespace (int .Values.server.service.port) }}
{{- else }}
{{- .Values.prefect.apiUrl }}
{{- end }}
{{- end }}

{{/*
The Prefect connection env for the chart's own pods (worker, hook, test):
PREFECT_API_URL and the credentials, only ever from Secrets.
*/}}
{{- define "video-ingest.prefectEnv" -}}
- name: PREFECT_API_URL
  value: {{ include "video-ingest.apiUrl" . | quote }}
- name: PREFECT_CLIENT_MAX_RETRIES
  value: {{ int .Values.prefect.clientMaxRetries | quote }}
{{- with .Values.prefect.apiKeySecret }}
{{- if .name }}
- name: PREFECT_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- with include "video-ingest.authStringSecretName" . }}
- name: PREFECT_API_AUTH_STRING
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.prefect.authStringSecret.key }}
{{- end }}
{{- end }}

{{/*
The Secret holding the Prefect API's auth string (`user:password`, basic
auth) that the server requires and every client sends:
prefect.authStringSecret.name when set (an existing Secret: the GitOps path),
else, for the in-chart server with server.auth.enabled (the default), the one
the chart generates. Empty when the API takes no auth string
(video-ingest.validate.authString fails on a contradiction).
*/}}
{{- define "video-ingest.authStringSecretName" -}}
{{- include "video-ingest.validate.authString" . }}
{{- if .Values.prefect.authStringSecret.name }}
{{- .Values.prefect.authStringSecret.name }}
{{- else if and .Values.server.enabled .Values.server.auth.enabled }}
{{- printf "%s-api-auth" (include "video-ingest.fullname" .) }}
{{- end }}
{{- end }}
