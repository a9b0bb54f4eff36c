{{- define "pagerpatch.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pagerpatch.labels" -}}
app.kubernetes.io/name: pagerpatch
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "pagerpatch.env" -}}
- name: NATS_URL
  value: {{ .Values.natsUrl | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.databaseUrlSecret }}
      key: DATABASE_URL
- name: PAGERPATCH_HOME
  value: /var/lib/pagerpatch
{{- if .Values.config }}
- name: PAGERPATCH_CONFIG_FILE
  value: /etc/pagerpatch/pagerpatch.yaml
{{- end }}
{{- range $k, $v := .Values.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{- define "pagerpatch.envFrom" -}}
{{- range .Values.envFromSecrets }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- end -}}

{{- define "pagerpatch.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The components that run as pods: every service, and the console when enabled. */}}
{{- define "pagerpatch.components" -}}
{{- $names := keys .Values.services -}}
{{- if .Values.console.enabled }}{{ $names = append $names "console" }}{{ end -}}
{{- sortAlpha $names | join "," -}}
{{- end -}}


{{/* The consumer services' /metrics as the console reads them (JSON service -> URL), through their metrics Services. */}}
{{- define "pagerpatch.metricsUrls" -}}
{{- $root := . -}}
{{- $urls := dict -}}
{{- range $name, $svc := .Values.services }}
{{- if not $svc.port }}
{{- $_ := set $urls $name (printf "http://%s-%s-metrics:%v/metrics" (include "pagerpatch.fullname" $root) $name $root.Values.metrics.port) -}}
{{- end }}
{{- end }}
{{- toJson $urls -}}
{{- end -}}
