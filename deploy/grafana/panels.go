package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Grafana's named colours.
const (
	green  = "green"
	yellow = "yellow"
	orange = "orange"
	red    = "red"
	blue   = "blue"
)

// datasource is the Prometheus the dashboard's variable points at, on every panel and
// query: no datasource UID of one Grafana is written into the file.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + varDatasource + "}")}
}

// builder hands out panel IDs in order, so they stay the same from one build to the next
// (a link to a panel names its ID).
type builder struct{ lastID uint32 }

func (b *builder) id() uint32 {
	b.lastID++
	return b.lastID
}

// stat is a row of big numbers, 4 columns wide unless resized.
func (b *builder) stat(title, description, unit string, th []dashboard.Threshold, targets ...*prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Id(b.id()).Title(title).Description(description).Datasource(datasource()).
		Span(4).Height(4).Unit(unit).Thresholds(thresholds(th)).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Targets(dataqueries(targets))
}

func (b *builder) table(title, description string, span uint32, targets ...*prometheus.DataqueryBuilder) *table.PanelBuilder {
	return table.NewPanelBuilder().Id(b.id()).Title(title).Description(description).Datasource(datasource()).
		Span(span).Height(8).Targets(dataqueries(targets)).
		// Set in full: the SDK's default footer has no reducer, which its own strict
		// reading (and so the test) refuses.
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}).CountRows(false))
}

func (b *builder) bargauge(title, description string, span uint32, targets ...*prometheus.DataqueryBuilder) *bargauge.PanelBuilder {
	return bargauge.NewPanelBuilder().Id(b.id()).Title(title).Description(description).Datasource(datasource()).
		Span(span).Height(8).Orientation(common.VizOrientationHorizontal).DisplayMode(common.BarGaugeDisplayModeGradient).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Targets(dataqueries(targets))
}

func (b *builder) timeseries(title, description, unit string, span uint32, targets ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Id(b.id()).Title(title).Description(description).Datasource(datasource()).
		Span(span).Height(8).Unit(unit).Min(0).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
		Targets(dataqueries(targets))
}

func dataqueries(qs []*prometheus.DataqueryBuilder) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, q := range qs {
		out[i] = q
	}
	return out
}

// query is a range query drawn over time.
func query(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(ref).Datasource(datasource()).Expr(expr).Range().LegendFormat(legend)
}

// instant is one value per series, at the end of the time range.
func instant(ref, expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(ref).Datasource(datasource()).Expr(expr).Instant()
}

// tableQuery is an instant query whose labels become a table's columns.
func tableQuery(ref, expr string) *prometheus.DataqueryBuilder {
	return instant(ref, expr).Format(prometheus.PromQueryFormatTable)
}

// queryVariable is a multi-value variable over a label's values, "All" by default.
func (b *builder) queryVariable(name, label, labelValues string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).Label(label).
		Datasource(datasource()).
		Query(str(labelValues)).Definition(labelValues).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).IncludeAll(true).AllValue(".*").
		Current(dashboard.VariableOption{Selected: cog.ToPtr(true), Text: arrayOf("All"), Value: arrayOf("$__all")})
}

// organize renames columns and hides some.
func organize(rename map[string]string, hide ...string) dashboard.DataTransformerConfig {
	exclude := map[string]bool{}
	for _, h := range hide {
		exclude[h] = true
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{"renameByName": rename, "excludeByName": exclude}}
}

// level is where a threshold colour starts.
type level struct {
	from  float64
	color string
}

// steps makes thresholds from a base colour and the levels above it: steps(green,
// level{1, red}) is green below 1 and red from 1.
func steps(base string, levels ...level) []dashboard.Threshold {
	out := []dashboard.Threshold{{Value: nil, Color: base}}
	for _, l := range levels {
		out = append(out, dashboard.Threshold{Value: cog.ToPtr(l.from), Color: l.color})
	}
	return out
}

func thresholds(steps []dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)
}

// dashed draws a series as a dashed line.
func dashed() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}}}
}

// outcomeColors colours a rotation's outcome by what it asks of an operator: nothing
// (rotated), a look (rolled back or aborted: the previous version works) or action.
func outcomeColors() []cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	colors := []struct{ outcome, color string }{
		{"rotated", green},
		{"rolled_back", orange},
		{"aborted", orange},
		{"revoke_failed", red},
		{"failed", red},
	}
	out := make([]cog.Builder[dashboard.DashboardFieldConfigSourceOverrides], len(colors))
	for i, c := range colors {
		out[i] = dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
			Matcher(dashboard.MatcherConfig{Id: "byName", Options: c.outcome}).
			Properties([]dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": c.color}}})
	}
	return out
}

func str(s string) dashboard.StringOrMap { return dashboard.StringOrMap{String: &s} }

func arrayOf(s string) dashboard.StringOrArrayOfString {
	return dashboard.StringOrArrayOfString{String: &s}
}

func option(s string) dashboard.VariableOption {
	return dashboard.VariableOption{Selected: cog.ToPtr(true), Text: arrayOf(s), Value: arrayOf(s)}
}
