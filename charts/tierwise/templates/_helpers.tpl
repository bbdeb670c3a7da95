{{/* Names, labels and the checks every template relies on. */}}

{{- define "tierwise.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tierwise.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tierwise.operatorName" -}}
{{- printf "%s-operator" (include "tierwise.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tierwise.webhookName" -}}
{{- printf "%s-webhook" (include "tierwise.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tierwise.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: tierwise
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The operator pods' selector: name and instance (component added on the pods). */}}
{{- define "tierwise.selectorLabels" -}}
app.kubernetes.io/name: tierwise-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tierwise.operatorLabels" -}}
{{ include "tierwise.labels" . }}
{{ include "tierwise.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "tierwise.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tierwise.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag[@digest]; the tag defaults to the chart's appVersion. */}}
{{- define "tierwise.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* true when the operator watches listed namespaces only. */}}
{{- define "tierwise.namespaced" -}}
{{- if .Values.operator.watchNamespaces }}true{{ end }}
{{- end }}

{{/* Refuse value combinations the schema cannot express, saying what to change. */}}
{{- define "tierwise.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.peering.enabled) }}
{{- fail "operator.replicas > 1 needs operator.peering.enabled=true (two unpeered operators would both reconcile every object); set operator.replicas=1 for a single replica without peering" }}
{{- end }}
{{- if and .Values.networkPolicy.engines.enabled (not .Values.networkPolicy.engines.namespaces) (not .Values.operator.watchNamespaces) }}
{{- fail "networkPolicy.engines.enabled needs networkPolicy.engines.namespaces (the namespaces holding ModelDeployments) when the operator watches the whole cluster" }}
{{- end }}
{{- range .Values.operator.watchNamespaces }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .) }}
{{- fail (printf "operator.watchNamespaces: %q is not a namespace name (lowercase letters, digits and '-'; no patterns in namespaced mode)" .) }}
{{- end }}
{{- end }}
{{- end }}

