{{/*
Names, labels and small checks shared by the templates.
*/}}

{{- define "weir.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The object name prefix: the release name when it already says "weir" ("weir" by default). */}}
{{- define "weir.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "weir.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{- define "weir.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "weir.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Lease weir-controller elects its status writer with; RBAC allows only this name. */}}
{{- define "weir.leaseName" -}}
{{- printf "%s-controller" (include "weir.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weir.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "weir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: weir
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selects the weir pods. Never change it in an upgrade: Deployment selectors are immutable. */}}
{{- define "weir.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: proxy
{{- end -}}

{{/* registry/image:tag, or registry/image@digest when a digest is given. */}}
{{- define "weir.image" -}}
{{- $image := .image -}}
{{- $repo := ternary $image.image (printf "%s/%s" $image.registry $image.image) (empty $image.registry) -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repo $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .appVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
extraArgs as flags, ingress-nginx style: {flag: value} gives --flag=value, {flag: ""} gives
--flag. Flags the chart sets itself are refused: a second copy would make the binary exit at
start (clap refuses repeated flags), or move the admin API off loopback.
*/}}
{{- define "weir.extraArgs" -}}
{{- range $key, $value := .args }}
{{- if has $key $.reserved }}
{{- fail (printf "%s.extraArgs.%s: the chart sets --%s itself; use the value named in values.yaml instead" $.field $key $key) }}
{{- end }}
{{- if eq (toString $value) "" }}
- --{{ $key }}
{{- else }}
- --{{ $key }}={{ $value }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Fails the render, naming the fields, when the values contradict each other. */}}
{{- define "weir.validate" -}}
{{- $c := .Values.controller -}}
{{- if le (int $c.terminationGracePeriodSeconds) (add (int $c.preStopSleepSeconds) (int $c.drainTimeoutSeconds) | int) -}}
{{- fail (printf "controller.terminationGracePeriodSeconds (%d) must exceed controller.preStopSleepSeconds (%d) + controller.drainTimeoutSeconds (%d), or the kubelet kills requests still draining" (int $c.terminationGracePeriodSeconds) (int $c.preStopSleepSeconds) (int $c.drainTimeoutSeconds)) -}}
{{- end -}}
{{- if and $c.autoscaling.enabled (gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas)) -}}
{{- fail (printf "controller.autoscaling.minReplicas (%d) exceeds controller.autoscaling.maxReplicas (%d)" (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and (not $c.service.enableHttp) (not $c.service.enableHttps) $c.service.enabled -}}
{{- fail "controller.service: enableHttp and enableHttps are both false; set controller.service.enabled=false for no Service" -}}
{{- end -}}
{{- if and $c.publishService.enabled (not $c.service.enabled) (not $c.publishService.pathOverride) -}}
{{- fail "controller.publishService.enabled publishes the chart's Service, but controller.service.enabled is false: set controller.publishService.pathOverride or disable publishService" -}}
{{- end -}}
{{- if and $c.metrics.serviceMonitor.enabled (not $c.metrics.enabled) -}}
{{- fail "controller.metrics.serviceMonitor.enabled needs controller.metrics.enabled (the ServiceMonitor selects the metrics Service)" -}}
{{- end -}}
{{- end -}}
