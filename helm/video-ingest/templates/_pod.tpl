{{/*
What the chart's pods share: the pod settings (ServiceAccount, API token,
pull secrets, pod security context, scheduling) and the scratch volumes
every container of the project image needs, its root filesystem being
read-only.
*/}}

{{/*
The pod settings of every pod the chart runs: serviceAccountName, whether
the API token is mounted (with a comment saying why, where it is),
imagePullSecrets, the pod securityContext and, from .scheduling (a
component's values), priorityClassName, nodeSelector, tolerations and
affinity. Call with
(dict "ctx" $ "serviceAccountName" name "automountToken" false
 "tokenNote" "why the token is mounted" "podSecurityContext" map
 "scheduling" .Values.worker); tokenNote and scheduling are optional.
*/}}
{{- define "video-ingest.podSettings" -}}
serviceAccountName: {{ .serviceAccountName }}
{{- with .tokenNote }}
# {{ . }}
{{- end }}
automountServiceAccountToken: {{ .automountToken }}
{{- with (include "video-ingest.imagePullSecrets" .ctx) }}
{{ . }}
{{- end }}
securityContext:
  {{- toYaml .podSecurityContext | nindent 2 }}
{{- with .scheduling }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/* imagePullSecrets for the chart's pods. */}}
{{- define "video-ingest.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets -}}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
The scratch volumes of a pod of the project image: tmp (/tmp) and
prefect-home (PREFECT_HOME, /home/app/.prefect), emptyDirs of the given
sizes. Call with (dict "tmp" "256Mi" "prefectHome" "64Mi").
*/}}
{{- define "video-ingest.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmp }}
- name: prefect-home
  emptyDir:
    sizeLimit: {{ .prefectHome }}
{{- end }}

{{/*
The mounts of the scratch volumes (video-ingest.scratchVolumes), in every
container of the project image. Call with (dict) or, to say in the manifest
what a container writes to PREFECT_HOME, (dict "prefectHomeNote" "...").
*/}}
{{- define "video-ingest.scratchVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- with .prefectHomeNote }}
# {{ . }}
{{- end }}
- name: prefect-home
  mountPath: /home/app/.prefect
{{- end }}
