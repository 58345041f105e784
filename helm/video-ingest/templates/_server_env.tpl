{{/*
The in-chart Prefect server's settings: its env (logging, database,
messaging, the services' batching) and which Redis its messaging uses.
*/}}

{{/*
"true" when the in-chart Prefect server uses Redis messaging, after checking
(video-ingest.validate.redisMessaging) that the settings name exactly one
Redis that something uses.
*/}}
{{- define "video-ingest.redisMessaging" -}}
{{- include "video-ingest.validate.redisMessaging" . }}
{{- if eq .Values.server.messaging.broker "redis" -}}
true
{{- end }}
{{- end }}

{{/*
"true" when the in-chart server keeps its concurrency leases in files on the
leases claim (pvc-server-leases.yaml): broker memory with
server.leases.persistence.enabled. With broker redis they are in Redis.
*/}}
{{- define "video-ingest.leaseFiles" -}}
{{- if and .Values.server.enabled .Values.server.leases.persistence.enabled (not (include "video-ingest.redisMessaging" .)) -}}
true
{{- end }}
{{- end }}

{{/* Where the server's filesystem lease storage keeps its files: PREFECT_HOME/concurrency_leases. */}}
{{- define "video-ingest.leaseFilesPath" -}}
/home/app/.prefect/concurrency_leases
{{- end }}

{{/* The Redis the server's messaging uses: server.messaging.redis.host, else the in-chart one. */}}
{{- define "video-ingest.redisHost" -}}
{{- .Values.server.messaging.redis.host | default (include "video-ingest.redisName" .) }}
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
{{- else if (include "video-ingest.leaseFiles" $ctx) }}
# Concurrency leases in files on the leases claim ({{ include "video-ingest.leaseFilesPath" $ctx }}):
# a restarted server still holds every lease, so their slots are freed as usual.
- name: PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE
  value: prefect.server.concurrency.lease_storage.filesystem
{{- end }}
{{- range $name, $value := $ctx.Values.server.env }}
{{- if not (has $name $except) }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}
