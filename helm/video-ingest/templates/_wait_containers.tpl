{{/*
Init containers that hold a pod back until what it needs answers.
*/}}

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
