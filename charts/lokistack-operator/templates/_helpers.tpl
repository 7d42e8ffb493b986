{{/* Names, labels and images shared by the templates. */}}

{{- define "lokistack-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The object name prefix: the release name, with the chart name unless it already contains it. */}}
{{- define "lokistack-operator.fullname" -}}
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

{{/* "<fullname>-<suffix>", kept within the 63 characters of a label value or DNS label. */}}
{{- define "lokistack-operator.suffixed" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- $prefix := include "lokistack-operator.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix $suffix }}
{{- end }}

{{- define "lokistack-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "lokistack-operator.labels" -}}
helm.sh/chart: {{ include "lokistack-operator.chart" . }}
app.kubernetes.io/name: {{ include "lokistack-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lokistack
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component of the release: ["operator"|"minio"|..., root context]. */}}
{{- define "lokistack-operator.selectorLabels" -}}
{{- $component := index . 0 }}
{{- $root := index . 1 -}}
app.kubernetes.io/name: {{ include "lokistack-operator.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ $component }}
{{- end }}

{{/* Full labels of one component: ["operator"|"minio"|..., root context]. */}}
{{- define "lokistack-operator.componentLabels" -}}
{{ include "lokistack-operator.labels" (index . 1) }}
app.kubernetes.io/component: {{ index . 0 }}
{{- end }}

{{- define "lokistack-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lokistack-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "repository:tag" of an image block; an empty tag means the chart's appVersion. */}}
{{- define "lokistack-operator.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/* The storage Secret the bundled MinIO's LokiStacks use. */}}
{{- define "lokistack-operator.minioStorageSecretName" -}}
{{- default (include "lokistack-operator.suffixed" (list . "minio-storage")) .Values.minio.storageSecretName }}
{{- end }}

{{/* The example LokiStack's storage Secret: explicit, else the bundled MinIO's. */}}
{{- define "lokistack-operator.exampleStorageSecretName" -}}
{{- if .Values.example.storageSecretName }}
{{- .Values.example.storageSecretName }}
{{- else if .Values.minio.enabled }}
{{- include "lokistack-operator.minioStorageSecretName" . }}
{{- end }}
{{- end }}

{{/* The LokiStack `helm test` exercises, or nothing when none is known. */}}
{{- define "lokistack-operator.testStackName" -}}
{{- if .Values.test.stackName }}
{{- .Values.test.stackName }}
{{- else if .Values.example.enabled }}
{{- .Values.example.name }}
{{- end }}
{{- end }}

{{/* Checks across values that the schema cannot express; rendered by deployment.yaml. */}}
{{- define "lokistack-operator.validate" -}}
{{- if and .Values.example.enabled (not (include "lokistack-operator.exampleStorageSecretName" .)) }}
{{- fail "example.enabled needs a storage secret: set example.storageSecretName to a Secret you created (see docs/operator.md), or set minio.enabled=true" }}
{{- end }}
{{- if and .Values.example.enabled .Values.watchNamespaces (not (has .Release.Namespace .Values.watchNamespaces)) }}
{{- fail (printf "example.enabled creates a LokiStack in %q, which watchNamespaces %v leaves unwatched: add the release namespace to watchNamespaces" .Release.Namespace .Values.watchNamespaces) }}
{{- end }}
{{- end }}
