{{/*
The checks that make bad values fail at `helm install` with one line saying
what to change, instead of inside a pod. Each renders nothing; the helper or
template that relies on the settings includes its check first.
*/}}

{{/* server.enabled (the in-chart server) or prefect.apiUrl (an existing one): exactly one. */}}
{{- define "video-ingest.validate.apiUrl" -}}
{{- if .Values.server.enabled }}
{{- if .Values.prefect.apiUrl }}
{{- fail "set either server.enabled=true (in-chart Prefect server) or prefect.apiUrl (an existing server), not both" }}
{{- end }}
{{- else }}
{{- $_ := required "prefect.apiUrl is required when server.enabled is false (the Prefect API to use, e.g. https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>)" .Values.prefect.apiUrl }}
{{- end }}
{{- end }}

{{/* A named auth string Secret only where the in-chart server checks it. */}}
{{- define "video-ingest.validate.authString" -}}
{{- $named := .Values.prefect.authStringSecret.name }}
{{- if and .Values.server.enabled (not .Values.server.auth.enabled) $named }}
{{- fail (printf "prefect.authStringSecret.name is %q but server.auth.enabled is false: the in-chart server would not check the credential its clients send (enable server.auth or clear the Secret name)" $named) }}
{{- end }}
{{- end }}

{{/* The in-chart server has a database: the in-chart PostgreSQL or an existing one. */}}
{{- define "video-ingest.validate.serverDatabase" -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.server.database.existingSecret) }}
{{- fail "server.enabled needs a database: postgresql.enabled=true, or server.database.existingSecret naming a Secret with a postgresql+asyncpg:// URL (SQLite is not offered: it cannot keep up with concurrency limits)" }}
{{- end }}
{{- end }}

{{/*
Redis messaging names exactly one Redis (the in-chart one or
server.messaging.redis.host), and the in-chart Redis is there only for it.
*/}}
{{- define "video-ingest.validate.redisMessaging" -}}
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
{{- end }}
{{- else if .Values.redis.enabled }}
{{- fail "redis.enabled=true needs server.messaging.broker=redis: the in-chart Redis serves only the server's messaging (set redis.enabled=false to keep messaging in memory)" }}
{{- end }}
{{- end }}

{{/* server.services.separate: the API's events reach the services process through Redis only. */}}
{{- define "video-ingest.validate.separateServices" -}}
{{- if not (include "video-ingest.redisMessaging" .) }}
{{- fail "server.services.separate needs server.messaging.broker=redis: with in-memory messaging the API's events never reach a services process" }}
{{- end }}
{{- end }}

{{/* With an external API the NetworkPolicies need its addresses. */}}
{{- define "video-ingest.validate.networkPolicy" -}}
{{- if and (not .Values.server.enabled) (not .Values.networkPolicy.prefectApi.cidrs) }}
{{- fail "networkPolicy.enabled (the default) with an external Prefect API (prefect.apiUrl) needs networkPolicy.prefectApi.cidrs: the addresses the chart's pods may reach it at (0.0.0.0/0 for any), or networkPolicy.enabled=false" }}
{{- end }}
{{- end }}

{{/*
The platform config is consistent: every deployment's work queue is in
workPool.queues (or is "default"), no tag or global limit is both set
and listed for deletion, and unresponsive runs are crashed only after at
least two heartbeats were missed.
*/}}
{{- define "video-ingest.validate.platformConfig" -}}
{{- $queueNames := list "default" }}
{{- range .Values.workPool.queues }}{{ $queueNames = append $queueNames .name }}{{ end }}
{{- range .Values.deployments }}
{{- if and .workQueue (not (has .workQueue $queueNames)) }}
{{- fail (printf "deployments: %s runs on queue %q, which is not in workPool.queues" .name .workQueue) }}
{{- end }}
{{- end }}
{{- $crashAfter := (.Values.unresponsiveRuns | default dict).crashAfterSeconds }}
{{- if not (kindIs "invalid" $crashAfter) }}
{{- $heartbeat := get (include "video-ingest.flowRunEnv" . | fromYaml) "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" | int64 }}
{{- if lt (int64 $crashAfter) (mul 2 $heartbeat) }}
{{- fail (printf "unresponsiveRuns.crashAfterSeconds is %d: it must be at least twice the flow runs' heartbeat, %d s (flowRuns.heartbeatSeconds), or live runs would be crashed" (int64 $crashAfter) $heartbeat) }}
{{- end }}
{{- end }}
{{- range .Values.concurrencyLimits.deleteTags }}
{{- if hasKey ($.Values.concurrencyLimits.tags | default dict) . }}
{{- fail (printf "concurrencyLimits: tag limit %q is both set in tags and listed in deleteTags" .) }}
{{- end }}
{{- end }}
{{- range .Values.concurrencyLimits.deleteGlobal }}
{{- if kindIs "map" (get ($.Values.concurrencyLimits.global | default dict) .) }}
{{- fail (printf "concurrencyLimits: global limit %q is both set in global and listed in deleteGlobal" .) }}
{{- end }}
{{- end }}
{{- end }}
