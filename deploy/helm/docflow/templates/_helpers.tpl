{{/* The workloads: one Deployment (and Service, PodDisruptionBudget) each.
port: its API's (probes too); metrics: where it serves /metrics (only
Prometheus needs to reach it); user: the Kafka user (docflow-<user>); job: the Prometheus job label the
alerts and the dashboard select; lag: the consumer groups KEDA scales on
(files/kafka.yaml); values: the key of its values. */}}
{{- define "docflow.workloads" -}}
- {name: gateway, service: docflow-gateway, image: gateway, port: 8000, metrics: 9000, user: gateway, job: gateway, values: gateway, public: true, blobs: true, database: gateway-database-url, apiKeys: true, rateLimited: true, internalToken: true, preStop: true, hpa: true}
- {name: status-api, service: docflow-status, image: status, port: 8001, metrics: 9001, user: status, job: status, values: statusApi, public: true, role: api, database: status-database-url, apiKeys: true, rateLimited: true, preStop: true, hpa: true}
- {name: status-projector, service: docflow-status-projector, image: status, port: 8001, metrics: 9001, user: status, job: status, values: statusProjector, role: projector, database: status-database-url, lag: status}
- {name: extractor, service: docflow-extractor, image: extractor, port: 8002, metrics: 9002, user: extractor, job: extractor, values: extractor, blobs: true, lag: extractor}
- {name: ocr, service: docflow-ocr, image: extractor, port: 8004, metrics: 9004, user: extractor, job: ocr, values: ocr, blobs: true, lag: ocr, command: [docflow-extractor, ocr]}
- {name: webhooks, service: docflow-webhooks, image: gateway, port: 8005, metrics: 9005, user: gateway, job: webhooks, values: webhooks, database: gateway-database-url, lag: webhooks, egress: webhooks, command: [python, -m, docflow_gateway, webhooks]}
- {name: embedder, service: docflow-embedder, image: embedder, port: 8003, metrics: 9003, user: embedder, job: embedder, values: embedder, internalToken: true, openai: true, qdrant: true, lag: embedder}
{{- end -}}

{{- define "docflow.labels" -}}
app.kubernetes.io/part-of: docflow
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The generated topics, users' ACLs and lag groups. */}}
{{- define "docflow.kafka" -}}
{{- .Files.Get "files/kafka.yaml" -}}
{{- end -}}

{{- define "docflow.kafkaSasl" -}}
{{- has .Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL") -}}
{{- end -}}

{{- define "docflow.kafkaTls" -}}
{{- has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") -}}
{{- end -}}

{{- define "docflow.image" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}
{{- if $root.Values.image.registry -}}
{{ printf "%s/%s:%s" (trimSuffix "/" $root.Values.image.registry) $name $root.Values.image.tag }}
{{- else -}}
{{ printf "docflow-%s:%s" $name $root.Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Where the status API is public: publicUrl, unless only the Ingress is on
and it gives the status API a host of its own (ingress.statusHost). */}}
{{- define "docflow.statusPublicUrl" -}}
{{- if and .Values.ingress.enabled .Values.ingress.statusHost (not .Values.gatewayApi.enabled) -}}
{{ printf "%s://%s" (urlParse .Values.publicUrl).scheme .Values.ingress.statusHost }}
{{- else -}}
{{ .Values.publicUrl }}
{{- end -}}
{{- end -}}
