{{/*
The platform config `video-ingest apply` reconciles (platform.yaml in the
ConfigMap): the work pool with its flow-run job template and env, the queues,
the concurrency limits and the deployments; and the flow-run pods' priority
class and pod quota switch.
*/}}

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

{{/*
The env of flow-run pods (jobTemplate.env): the ingest.* settings as
VIDEO_INGEST_* variables, their heartbeat (flowRuns.heartbeatSeconds), plus
flowRuns.env. Values are strings.
*/}}
{{- define "video-ingest.flowRunEnv" -}}
{{- $i := .Values.ingest }}
{{- $env := dict
  "VIDEO_INGEST_HANDLER" ($i.handler | toString)
  "VIDEO_INGEST_MAX_INFLIGHT" (int64 $i.maxInflight | toString)
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
  "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" (int64 .Values.flowRuns.heartbeatSeconds | toString)
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
src/video_ingest/platform/config.py): built from values as one dict and
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
{{- /* the same scratch volumes as every other pod of ours (_pod.tpl), as data */}}
{{- $volumes := include "video-ingest.scratchVolumes" (dict "tmp" $fr.tmpSizeLimit "prefectHome" "64Mi") | fromYamlArray }}
{{- $mounts := include "video-ingest.scratchVolumeMounts" (dict) | fromYamlArray }}
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
{{- include "video-ingest.validate.platformConfig" . }}
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
{{- $_ := set $tags . nil }}
{{- end }}
{{- range .Values.concurrencyLimits.deleteGlobal }}
{{- $_ := set $globals . nil }}
{{- end }}
{{- /* One section at a time, so the file reads in the documented order. */}}
workPool:
  {{- toYaml $pool | nindent 2 }}
concurrencyLimits:
  {{- toYaml (dict "tags" $tags "global" $globals) | nindent 2 }}
deployments:
  {{- toYaml .Values.deployments | nindent 2 }}
unresponsiveRuns:
  {{- $crashAfter := (include "video-ingest.limit" (.Values.unresponsiveRuns | default dict).crashAfterSeconds | fromJson).v }}
  {{- toYaml (dict "crashAfterSeconds" $crashAfter) | nindent 2 }}
{{- end }}

{{/*
A limit as JSON {"v": N} or {"v": null}: integers stay integers, null stays
null (a dict lookup is the only way to return nil from a template).
*/}}
{{- define "video-ingest.limit" -}}
{{- if kindIs "invalid" . }}{"v": null}{{ else }}{"v": {{ int64 . }}}{{ end }}
{{- end }}
