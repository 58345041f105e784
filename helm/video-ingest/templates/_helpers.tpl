{{/*
Names and labels: the chart's object names, the recommended labels and
selectors, the image reference and the ServiceAccount names. Every template
takes its names and labels from here.
*/}}

{{/* The chart name (app.kubernetes.io/name). */}}
{{- define "video-ingest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: the release name, with the chart name
appended unless the release name already contains it. Capped at 40
characters so the longest suffix ("-postgresql-headless") stays under 63.
*/}}
{{- define "video-ingest.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* helm.sh/chart: name and version. */}}
{{- define "video-ingest.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The project image tag: image.tag, else the chart's appVersion. */}}
{{- define "video-ingest.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{/* The project image, used by every role. */}}
{{- define "video-ingest.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "video-ingest.imageTag" .) }}
{{- end }}

{{/*
Selector labels: name, instance and component only, so they never change on
upgrade. Call with (dict "ctx" $ "component" "worker").
*/}}
{{- define "video-ingest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "video-ingest.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/*
The recommended labels on every object: the selector labels plus version,
managed-by, part-of, helm.sh/chart and commonLabels.
Call with (dict "ctx" $ "component" "worker").
*/}}
{{- define "video-ingest.labels" -}}
helm.sh/chart: {{ include "video-ingest.chart" .ctx }}
{{ include "video-ingest.selectorLabels" . }}
app.kubernetes.io/version: {{ include "video-ingest.imageTag" .ctx | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: {{ include "video-ingest.name" .ctx }}
{{- range $key, $value := .ctx.Values.commonLabels }}
{{- if not (or (hasPrefix "app.kubernetes.io/" $key) (hasPrefix "helm.sh/" $key)) }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Pod template labels: the recommended labels plus extra pod labels (which
cannot override them). Call with (dict "ctx" $ "component" "worker" "extra" map).
*/}}
{{- define "video-ingest.podLabels" -}}
{{- $base := include "video-ingest.labels" . | fromYaml }}
{{- include "video-ingest.labels" . }}
{{- range $key, $value := (.extra | default dict) }}
{{- if not (hasKey $base $key) }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where flow-run Jobs run: flowRuns.namespace, else the release namespace. */}}
{{- define "video-ingest.flowRunNamespace" -}}
{{- .Values.flowRuns.namespace | default .Release.Namespace }}
{{- end }}

{{/* ServiceAccount of the worker (it has the Role). */}}
{{- define "video-ingest.workerServiceAccountName" -}}
{{- if .Values.worker.serviceAccount.create }}
{{- .Values.worker.serviceAccount.name | default (printf "%s-worker" (include "video-ingest.fullname" .)) }}
{{- else }}
{{- required "worker.serviceAccount.name is required when worker.serviceAccount.create is false" .Values.worker.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ServiceAccount of the flow-run pods (no API token, no Role). */}}
{{- define "video-ingest.flowRunServiceAccountName" -}}
{{- if .Values.flowRuns.serviceAccount.create }}
{{- .Values.flowRuns.serviceAccount.name | default (printf "%s-flow-run" (include "video-ingest.fullname" .)) }}
{{- else }}
{{- required "flowRuns.serviceAccount.name is required when flowRuns.serviceAccount.create is false" .Values.flowRuns.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
ServiceAccount of the pods that need no Kubernetes API at all: the Prefect
server, PostgreSQL, Redis, the apply hook and the test pod.
*/}}
{{- define "video-ingest.appServiceAccountName" -}}
{{- include "video-ingest.fullname" . }}
{{- end }}

{{/*
The pre-delete cleanup hook's name (its Job, ServiceAccount, Role and
RoleBinding).
*/}}
{{- define "video-ingest.cleanupName" -}}
{{- printf "%s-cleanup" (include "video-ingest.fullname" .) }}
{{- end }}

{{/*
The label selector of what the cleanup hook deletes: this release's
flow-run Jobs and pods, the apply hook Job and pod, and the test pod. Never
the cleanup's own pod, nor the worker, server, PostgreSQL and Redis, which
Helm deletes itself.
*/}}
{{- define "video-ingest.cleanupSelector" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s,app.kubernetes.io/component in (flow-run,apply,test)" (include "video-ingest.name" .) .Release.Name }}
{{- end }}

{{/*
The namespaces the cleanup hook deletes in: the release namespace (hook
Jobs, test pod) and the flow-run namespace when that differs.
*/}}
{{- define "video-ingest.cleanupNamespaces" -}}
{{- list .Release.Namespace (include "video-ingest.flowRunNamespace" .) | uniq | toJson }}
{{- end }}

{{/*
The annotations of the cleanup hook's objects: run by `helm uninstall`
before it deletes anything, in weight order, and deleted once all succeeded
(a failed Job stays for its log until the next `helm uninstall`).
Call with (dict "weight" -10).
*/}}
{{- define "video-ingest.cleanupHookAnnotations" -}}
helm.sh/hook: pre-delete
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/* The in-chart Prefect server's Service name. */}}
{{- define "video-ingest.serverName" -}}
{{- printf "%s-server" (include "video-ingest.fullname" .) }}
{{- end }}

{{/* The in-chart PostgreSQL's name (StatefulSet, Service, Secret). */}}
{{- define "video-ingest.postgresqlName" -}}
{{- printf "%s-postgresql" (include "video-ingest.fullname" .) }}
{{- end }}

{{/* The Secret holding the in-chart PostgreSQL password. */}}
{{- define "video-ingest.postgresqlSecretName" -}}
{{- .Values.postgresql.auth.existingSecret | default (include "video-ingest.postgresqlName" .) }}
{{- end }}

{{/* The in-chart Redis's name (Deployment, Service, Secret, NetworkPolicy). */}}
{{- define "video-ingest.redisName" -}}
{{- printf "%s-redis" (include "video-ingest.fullname" .) }}
{{- end }}

{{/*
The Secret holding the Redis password: server.messaging.redis.existingSecret,
else the one the chart generates for the in-chart Redis; empty for an
existing Redis without a password.
*/}}
{{- define "video-ingest.redisSecretName" -}}
{{- if .Values.server.messaging.redis.existingSecret }}
{{- .Values.server.messaging.redis.existingSecret }}
{{- else if .Values.redis.enabled }}
{{- include "video-ingest.redisName" . }}
{{- end }}
{{- end }}

{{/* The in-chart Prefect server's services Deployment (server.services.separate). */}}
{{- define "video-ingest.serverServicesName" -}}
{{- printf "%s-server-services" (include "video-ingest.fullname" .) }}
{{- end }}
