{{/*
Names, labels and the few values derived from several keys. Every template
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

{{/*
The priority class of flow-run pods: flowRuns.priorityClassName, else the
chart's own when flowRuns.podQuota is on (it scopes the pod quota to them).
PriorityClasses are cluster-scoped, so the name carries the namespace.
*/}}
{{- define "video-ingest.flowRunPriorityClassName" -}}
{{- if .Values.flowRuns.priorityClassName -}}
{{- .Values.flowRuns.priorityClassName }}
{{- else if include "video-ingest.podQuotaEnabled" . -}}
{{- printf "%s-%s-flow-run" .Release.Namespace (include "video-ingest.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* "true" when the flow-run pod quota applies: enabled and the pool has a limit. */}}
{{- define "video-ingest.podQuotaEnabled" -}}
{{- if and .Values.flowRuns.podQuota.enabled (not (kindIs "invalid" .Values.workPool.concurrencyLimit)) -}}
true
{{- end }}
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
"true" when the in-chart Prefect server uses Redis messaging, after checking
that the settings name exactly one Redis that something uses. Fails at
install time otherwise.
*/}}
{{- define "video-ingest.redisMessaging" -}}
{{- $redis := .Values.server.messaging.redis }}
{{- if eq .Values.server.messaging.broker "redis" }}
{{- if and .Values.redis.enabled $redis.host }}
{{- fail "set either redis.enabled=true (the in-chart Redis) or server.messaging.redis.host (an existing Redis), not both" }}
{{- end }}
{{- if not (or .Values.redis.enabled $redis.host) }}
{{- fail "server.messaging.broker=redis needs a Redis: set redis.enabled=true (the in-chart one) or server.messaging.redis.host (an existing one)" }}
{{- end }}
{{- if and .Values.redis.enabled (gt (int $redis.db) 15) }}
{{- fail (printf "server.messaging.redis.db is %d: the in-chart Redis has databases 0 to 15" (int $redis.db)) }}
{{- end -}}
true
{{- else if .Values.redis.enabled }}
{{- fail "redis.enabled=true needs server.messaging.broker=redis: the in-chart Redis serves only the server's messaging (set redis.enabled=false to keep messaging in memory)" }}
{{- end }}
{{- end }}

{{/* The Redis the server's messaging uses: server.messaging.redis.host, else the in-chart one. */}}
{{- define "video-ingest.redisHost" -}}
{{- .Values.server.messaging.redis.host | default (include "video-ingest.redisName" .) }}
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

{{/*
An initContainer that waits until host:port accepts TCP connections, so the
server does not crash-loop through its first start. Gives up after the
server's startupSeconds. Call with
(dict "ctx" $ "name" "database" "what" "PostgreSQL" "host" "db" "port" 5432).
*/}}
{{- define "video-ingest.waitForTcpContainer" -}}
- name: wait-for-{{ .name }}
  image: {{ include "video-ingest.image" .ctx | quote }}
  imagePullPolicy: {{ .ctx.Values.image.pullPolicy }}
  command:
    - python3
    - -c
    - |
      import socket, sys, time
      host, port = "{{ .host }}", {{ int .port }}
      deadline = time.monotonic() + {{ int .ctx.Values.server.startupSeconds }}
      while True:
          try:
              socket.create_connection((host, port), timeout=5).close()
              print(f"{{ .what }} accepts connections at {host}:{port}")
              sys.exit(0)
          except OSError as exc:
              if time.monotonic() > deadline:
                  print(f"{{ .what }} at {host}:{port} unreachable: {exc}", file=sys.stderr)
                  sys.exit(1)
              time.sleep(2)
  resources:
    {{- toYaml .ctx.Values.waitResources | nindent 4 }}
  securityContext:
    {{- toYaml .ctx.Values.securityContext | nindent 4 }}
{{- end }}

{{/*
The Prefect API every component talks to: the in-chart server's Service
when server.enabled, else prefect.apiUrl. Fails on an ambiguous or missing
setting, at install time.
*/}}
{{- define "video-ingest.apiUrl" -}}
{{- if .Values.server.enabled }}
{{- if .Values.prefect.apiUrl }}
{{- fail "set either server.enabled=true (in-chart Prefect server) or prefect.apiUrl (an existing server), not both" }}
{{- end }}
{{- printf "http://%s.%s.svc:%d/api" (include "video-ingest.serverName" .) .Release.Namespace (int .Values.server.service.port) }}
{{- else }}
{{- required "prefect.apiUrl is required when server.enabled is false (the Prefect API to use, e.g. https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>)" .Values.prefect.apiUrl }}
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
the chart generates. Empty when the API takes no auth string. Fails at
install time on a contradiction.
*/}}
{{- define "video-ingest.authStringSecretName" -}}
{{- $named := .Values.prefect.authStringSecret.name }}
{{- if and .Values.server.enabled (not .Values.server.auth.enabled) $named }}
{{- fail (printf "prefect.authStringSecret.name is %q but server.auth.enabled is false: the in-chart server would not check the credential its clients send (enable server.auth or clear the Secret name)" $named) }}
{{- end }}
{{- if $named }}
{{- $named }}
{{- else if and .Values.server.enabled .Values.server.auth.enabled }}
{{- printf "%s-api-auth" (include "video-ingest.fullname" .) }}
{{- end }}
{{- end }}

{{/*
An initContainer that waits until the Prefect API answers on /health (the
in-chart server may still be migrating its database). Gives up after
.timeout seconds. Call with (dict "ctx" $ "timeout" 300).
*/}}
{{- define "video-ingest.waitForApiContainer" -}}
- name: wait-for-api
  image: {{ include "video-ingest.image" .ctx | quote }}
  imagePullPolicy: {{ .ctx.Values.image.pullPolicy }}
  command:
    - python3
    - -c
    - |
      import os, sys, time, urllib.request
      url = os.environ["PREFECT_API_URL"].rstrip("/") + "/health"
      deadline = time.monotonic() + {{ int .timeout }}
      while True:
          try:
              with urllib.request.urlopen(url, timeout=5) as response:
                  if response.status == 200:
                      print(f"Prefect API answers at {url}")
                      sys.exit(0)
          except Exception as exc:
              error = exc
          if time.monotonic() > deadline:
              print(f"Prefect API at {url} did not answer in {{ int .timeout }}s: {error}", file=sys.stderr)
              sys.exit(1)
          time.sleep(3)
  env:
    - name: PREFECT_API_URL
      value: {{ include "video-ingest.apiUrl" .ctx | quote }}
  resources:
    {{- toYaml .ctx.Values.waitResources | nindent 4 }}
  securityContext:
    {{- toYaml .ctx.Values.securityContext | nindent 4 }}
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
The env of flow-run pods (jobTemplate.env): the ingest.* settings as
VIDEO_INGEST_* variables, plus flowRuns.env. Values are strings.
*/}}
{{- define "video-ingest.flowRunEnv" -}}
{{- $i := .Values.ingest }}
{{- $env := dict
  "VIDEO_INGEST_HANDLER" ($i.handler | toString)
  "VIDEO_INGEST_MAX_INFLIGHT" (int64 $i.window | toString)
  "VIDEO_INGEST_MAX_WORKERS" (int64 $i.maxWorkers | toString)
  "VIDEO_INGEST_RETRIES" (int64 $i.retries | toString)
  "VIDEO_INGEST_RETRY_DELAY" ($i.retryDelay | toString)
  "VIDEO_INGEST_RETRY_JITTER" ($i.retryJitter | toString)
  "VIDEO_INGEST_BATCH_SIZE" (int64 $i.batchSize | toString)
  "VIDEO_INGEST_BATCH_ATTEMPTS" (int64 $i.batchAttempts | toString)
  "VIDEO_INGEST_BATCH_TIMEOUT" ($i.batchTimeout | toString)
  "VIDEO_INGEST_START_TIMEOUT" ($i.startTimeout | toString)
  "VIDEO_INGEST_TAG" ($i.tag | toString)
  "VIDEO_INGEST_SLOT_LIMIT" ($i.slotLimit | toString)
  "VIDEO_INGEST_SLOT_BLOCK" (int64 $i.slotBlock | toString)
  "VIDEO_INGEST_SOURCE_BASE" ($i.sourceBase | toString)
  "VIDEO_INGEST_DESTINATION" ($i.destination | toString)
  "VIDEO_INGEST_SOURCE_SCHEMES" (join "," $i.sourceSchemes)
  "VIDEO_INGEST_PROBE_TIMEOUT" ($i.probeTimeout | toString)
  "PREFECT_CLIENT_MAX_RETRIES" (int .Values.prefect.clientMaxRetries | toString)
  "VIDEO_INGEST_LOG_LEVEL" ($i.logLevel | toString)
  "PREFECT_LOGGING_EXTRA_LOGGERS" "video_ingest"
}}
{{- range .Values.deployments }}
{{- if eq .flow "ingest-batch" }}
{{- if not (hasKey $env "VIDEO_INGEST_BATCH_DEPLOYMENT") }}
{{- $_ := set $env "VIDEO_INGEST_BATCH_DEPLOYMENT" (printf "ingest-batch/%s" .name) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.flowRuns.env }}
{{- $_ := set $env $name ($value | toString) }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
The platform config `video-ingest apply` reconciles (see
src/video_ingest/platform_config.py): built from values as one dict and
written with toYaml, so numbers and nulls keep their types.
*/}}
{{- define "video-ingest.platformConfig" -}}
{{- $fr := .Values.flowRuns }}
{{- $resources := dict }}
{{- range $kind, $quantities := $fr.resources }}
{{- $q := dict }}
{{- range $resource, $quantity := $quantities }}
{{- $_ := set $q $resource ($quantity | toString) }}
{{- end }}
{{- $_ := set $resources $kind $q }}
{{- end }}
{{- $volumes := list (dict "name" "tmp" "emptyDir" (dict "sizeLimit" $fr.tmpSizeLimit)) (dict "name" "prefect-home" "emptyDir" (dict "sizeLimit" "64Mi")) }}
{{- $mounts := list (dict "name" "tmp" "mountPath" "/tmp") (dict "name" "prefect-home" "mountPath" "/home/app/.prefect") }}
{{- $pullSecrets := concat .Values.image.pullSecrets $fr.imagePullSecrets | uniq }}
{{- /* On the Jobs and their pods; the chart's labels win over flowRuns.labels,
so the cleanup hook's selector always finds them. */}}
{{- $labels := merge (dict "app.kubernetes.io/name" (include "video-ingest.name" .) "app.kubernetes.io/instance" .Release.Name "app.kubernetes.io/component" "flow-run") $fr.labels }}
{{- $job := dict
  "namespace" (include "video-ingest.flowRunNamespace" .)
  "image" (include "video-ingest.image" .)
  "imagePullPolicy" .Values.image.pullPolicy
  "serviceAccountName" (include "video-ingest.flowRunServiceAccountName" .)
  "automountServiceAccountToken" false
  "finishedJobTtl" (include "video-ingest.limit" $fr.finishedJobTtl | fromJson).v
  "backoffLimit" (int64 $fr.backoffLimit)
  "podWatchTimeoutSeconds" (int64 $fr.podWatchTimeoutSeconds)
  "env" (include "video-ingest.flowRunEnv" . | fromYaml)
  "envFromSecrets" $fr.envFromSecrets
  "labels" $labels
  "annotations" $fr.annotations
  "resources" $resources
  "nodeSelector" $fr.nodeSelector
  "tolerations" $fr.tolerations
  "affinity" $fr.affinity
  "imagePullSecrets" $pullSecrets
  "podSecurityContext" $fr.podSecurityContext
  "securityContext" $fr.securityContext
  "volumes" (concat $volumes $fr.volumes)
  "volumeMounts" (concat $mounts $fr.volumeMounts)
}}
{{- with include "video-ingest.flowRunPriorityClassName" . }}
{{- $_ := set $job "priorityClassName" . }}
{{- end }}
{{- /* Leave out what is empty: the config's defaults are the same. */}}
{{- range $key := list "envFromSecrets" "annotations" "nodeSelector" "tolerations" "affinity" "imagePullSecrets" }}
{{- if empty (get $job $key) }}
{{- $_ := unset $job $key }}
{{- end }}
{{- end }}
{{- $queues := list }}
{{- range .Values.workPool.queues }}
{{- $queue := dict "name" .name }}
{{- if hasKey . "concurrencyLimit" }}
{{- $_ := set $queue "concurrencyLimit" (include "video-ingest.limit" .concurrencyLimit | fromJson).v }}
{{- end }}
{{- with .priority }}{{ $_ := set $queue "priority" (int64 .) }}{{ end }}
{{- with .description }}{{ $_ := set $queue "description" . }}{{ end }}
{{- $queues = append $queues $queue }}
{{- end }}
{{- $queueNames := list "default" }}
{{- range $queues }}{{ $queueNames = append $queueNames .name }}{{ end }}
{{- range .Values.deployments }}
{{- if and .workQueue (not (has .workQueue $queueNames)) }}
{{- fail (printf "deployments: %s runs on queue %q, which is not in workPool.queues" .name .workQueue) }}
{{- end }}
{{- end }}
{{- $pool := dict
  "name" .Values.workPool.name
  "concurrencyLimit" (include "video-ingest.limit" .Values.workPool.concurrencyLimit | fromJson).v
  "queues" $queues
  "jobTemplate" $job
}}
{{- with .Values.workPool.description }}
{{- $_ := set $pool "description" . }}
{{- end }}
{{- $tags := dict }}
{{- range $tag, $limit := .Values.concurrencyLimits.tags }}
{{- $_ := set $tags $tag (include "video-ingest.limit" $limit | fromJson).v }}
{{- end }}
{{- $globals := dict }}
{{- range $name, $spec := .Values.concurrencyLimits.global }}
{{- if kindIs "map" $spec }}
{{- $g := dict "limit" (int64 $spec.limit) }}
{{- if hasKey $spec "slotDecayPerSecond" }}
{{- $_ := set $g "slotDecayPerSecond" $spec.slotDecayPerSecond }}
{{- end }}
{{- if hasKey $spec "active" }}
{{- $_ := set $g "active" $spec.active }}
{{- end }}
{{- $_ := set $globals $name $g }}
{{- end }}
{{- end }}
{{- /* Deletions are written as null, which is how platform.yaml says "delete". */}}
{{- range .Values.concurrencyLimits.deleteTags }}
{{- if hasKey $tags . }}
{{- fail (printf "concurrencyLimits: tag limit %q is both set in tags and listed in deleteTags" .) }}
{{- end }}
{{- $_ := set $tags . nil }}
{{- end }}
{{- range .Values.concurrencyLimits.deleteGlobal }}
{{- if hasKey $globals . }}
{{- fail (printf "concurrencyLimits: global limit %q is both set in global and listed in deleteGlobal" .) }}
{{- end }}
{{- $_ := set $globals . nil }}
{{- end }}
{{- /* One section at a time, so the file reads in the documented order. */}}
workPool:
  {{- toYaml $pool | nindent 2 }}
concurrencyLimits:
  {{- toYaml (dict "tags" $tags "global" $globals) | nindent 2 }}
deployments:
  {{- toYaml .Values.deployments | nindent 2 }}
{{- end }}

{{/*
A limit as JSON {"v": N} or {"v": null}: integers stay integers, null stays
null (a dict lookup is the only way to return nil from a template).
*/}}
{{- define "video-ingest.limit" -}}
{{- if kindIs "invalid" . }}{"v": null}{{ else }}{"v": {{ int64 . }}}{{ end }}
{{- end }}

{{/*
The in-chart Prefect server's settings shared by its API and, with
server.services.separate, its services: logging, database, messaging, the
services' batching, and server.env but the names in .except (settings the
caller sets itself). Call with (dict "ctx" $ "except" (list ...)).
*/}}
{{- define "video-ingest.serverEnv" -}}
{{- $ctx := .ctx }}
{{- $except := .except | default list -}}
- name: PREFECT_SERVER_ANALYTICS_ENABLED
  value: "false"
- name: PREFECT_LOGGING_LEVEL
  value: {{ $ctx.Values.server.logLevel | quote }}
{{- with $ctx.Values.server.services.taskRunRecorder }}
- name: PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE
  value: {{ .batchSize | quote }}
- name: PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE
  value: {{ .readBatchSize | quote }}
- name: PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL
  value: {{ .flushIntervalSeconds | quote }}
{{- end }}
{{- with $ctx.Values.server.services.eventPersister }}
- name: PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE
  value: {{ .batchSize | quote }}
- name: PREFECT_SERVER_SERVICES_EVENT_PERSISTER_READ_BATCH_SIZE
  value: {{ .readBatchSize | quote }}
- name: PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL
  value: {{ .flushIntervalSeconds | quote }}
{{- end }}
{{- if $ctx.Values.postgresql.enabled }}
- name: PREFECT_SERVER_DATABASE_DRIVER
  value: postgresql+asyncpg
- name: PREFECT_SERVER_DATABASE_HOST
  value: {{ include "video-ingest.postgresqlName" $ctx | quote }}
- name: PREFECT_SERVER_DATABASE_PORT
  value: "5432"
- name: PREFECT_SERVER_DATABASE_USER
  value: {{ $ctx.Values.postgresql.auth.username | quote }}
- name: PREFECT_SERVER_DATABASE_NAME
  value: {{ $ctx.Values.postgresql.auth.database | quote }}
- name: PREFECT_SERVER_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "video-ingest.postgresqlSecretName" $ctx }}
      key: {{ $ctx.Values.postgresql.auth.secretKey }}
{{- else }}
- name: PREFECT_SERVER_DATABASE_CONNECTION_URL
  valueFrom:
    secretKeyRef:
      name: {{ $ctx.Values.server.database.existingSecret }}
      key: {{ $ctx.Values.server.database.existingSecretKey }}
{{- end }}
{{- if (include "video-ingest.redisMessaging" $ctx) }}
{{- with $ctx.Values.server.messaging.redis }}
# Redis messaging (prefect-redis): broker, cache, causal ordering
# and concurrency leases.
- name: PREFECT_MESSAGING_BROKER
  value: prefect_redis.messaging
- name: PREFECT_MESSAGING_CACHE
  value: prefect_redis.messaging
- name: PREFECT_SERVER_EVENTS_CAUSAL_ORDERING
  value: prefect_redis.ordering
- name: PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE
  value: prefect_redis.lease_storage
- name: PREFECT_REDIS_MESSAGING_HOST
  value: {{ include "video-ingest.redisHost" $ctx | quote }}
- name: PREFECT_REDIS_MESSAGING_PORT
  value: {{ int .port | quote }}
- name: PREFECT_REDIS_MESSAGING_DB
  value: {{ int .db | quote }}
{{- with include "video-ingest.redisSecretName" $ctx }}
- name: PREFECT_REDIS_MESSAGING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $ctx.Values.server.messaging.redis.existingSecretKey }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := $ctx.Values.server.env }}
{{- if not (has $name $except) }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The in-chart Prefect server's services Deployment (server.services.separate). */}}
{{- define "video-ingest.serverServicesName" -}}
{{- printf "%s-server-services" (include "video-ingest.fullname" .) }}
{{- end }}

{{/*
The pod settings the in-chart server's pods share (API, and with
server.services.separate its services): service account, pull secrets, pod
security context and server.{priorityClassName,nodeSelector,tolerations,affinity}.
*/}}
{{- define "video-ingest.serverPodSettings" -}}
serviceAccountName: {{ include "video-ingest.appServiceAccountName" . }}
automountServiceAccountToken: false
{{- with (include "video-ingest.imagePullSecrets" .) }}
{{ . }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.server.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.server.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.server.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.server.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
