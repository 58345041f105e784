{{/*
The pieces networkpolicy.yaml builds its NetworkPolicies from: the peers
(the chart's pods, by component) and the egress rules several of them share.
*/}}

{{/*
A peer: this release's pods of one component, in the release namespace or,
with .namespace, in that one. Call with
(dict "ctx" $ "component" "worker") or (dict "ctx" $ "component" "flow-run" "namespace" "runs").
*/}}
{{- define "video-ingest.networkPolicy.peer" -}}
- podSelector:
    matchLabels:
      {{- include "video-ingest.selectorLabels" . | nindent 6 }}
  {{- with .namespace }}
  namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ . }}
  {{- end }}
{{- end }}

{{/* Egress to the cluster DNS (networkPolicy.dnsPeers), UDP and TCP 53. */}}
{{- define "video-ingest.networkPolicy.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dnsPeers | nindent 4 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}

{{/*
Egress to the Prefect API: the in-chart server's pods (port 4200), else the
external API's networkPolicy.prefectApi CIDRs and ports.
*/}}
{{- define "video-ingest.networkPolicy.prefectApiEgress" -}}
{{- if .Values.server.enabled -}}
- to:
    {{- include "video-ingest.networkPolicy.peer" (dict "ctx" . "component" "server" "namespace" .Release.Namespace) | nindent 4 }}
  ports:
    - protocol: TCP
      port: 4200
{{- else -}}
- to:
    {{- range .Values.networkPolicy.prefectApi.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.prefectApi.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{/* Egress to the Kubernetes API: networkPolicy.kubernetesApi's CIDRs and ports. */}}
{{- define "video-ingest.networkPolicy.kubernetesApiEgress" -}}
- to:
    {{- range .Values.networkPolicy.kubernetesApi.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.kubernetesApi.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}

{{/*
The metadata and pod selector of the NetworkPolicy of one component's pods.
Call with (dict "ctx" $ "component" "worker" "name" "<object name>" "namespace" "<ns>").
*/}}
{{- define "video-ingest.networkPolicy.head" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ .namespace | default .ctx.Release.Namespace }}
  labels:
    {{- include "video-ingest.labels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "video-ingest.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
{{- end }}
