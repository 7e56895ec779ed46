package bench

import (
	"io"
	"net/http"
	"sync"

	colmetric "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP collector stand-in: it accepts protobuf exports on /v1/traces
// and /v1/metrics, decodes them as a collector would, and counts what it received by the
// exporter's service.name. It keeps nothing else, so a long run costs it no memory.
type collector struct {
	mu      sync.Mutex
	byName  map[string]*received
	refused int
}

// received is what one service exported.
type received struct {
	traceRequests, spans    int
	metricRequests, metrics int   // metrics: in all requests, each with its data points
	bytes                   int64 // request bodies (an SDK sends one resource a request)
}

func newCollector() *collector { return &collector{byName: map[string]*received{}} }

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost {
		c.refuse(w, http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/v1/traces":
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			c.refuse(w, http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			got := c.service(rs.GetResource())
			got.traceRequests++
			for _, ss := range rs.GetScopeSpans() {
				got.spans += len(ss.GetSpans())
			}
			got.bytes += int64(len(body)) / int64(len(req.GetResourceSpans()))
		}
		c.mu.Unlock()
	case "/v1/metrics":
		var req colmetric.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			c.refuse(w, http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rm := range req.GetResourceMetrics() {
			got := c.service(rm.GetResource())
			got.metricRequests++
			for _, sm := range rm.GetScopeMetrics() {
				got.metrics += len(sm.GetMetrics())
			}
			got.bytes += int64(len(body)) / int64(len(req.GetResourceMetrics()))
		}
		c.mu.Unlock()
	default:
		c.refuse(w, http.StatusNotFound)
		return
	}
	// An empty body is a valid, empty Export*ServiceResponse: nothing was rejected.
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) refuse(w http.ResponseWriter, code int) {
	c.mu.Lock()
	c.refused++
	c.mu.Unlock()
	w.WriteHeader(code)
}

// service returns the counts of the resource's service.name; c.mu is held.
func (c *collector) service(res *resourcepb.Resource) *received {
	name := ""
	for _, a := range res.GetAttributes() {
		if a.GetKey() == "service.name" {
			name = a.GetValue().GetStringValue()
		}
	}
	if c.byName[name] == nil {
		c.byName[name] = &received{}
	}
	return c.byName[name]
}

// of returns a copy of what the service exported so far.
func (c *collector) of(service string) received {
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := c.byName[service]; got != nil {
		return *got
	}
	return received{}
}

// refusals counts requests that were not valid OTLP exports.
func (c *collector) refusals() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused
}
