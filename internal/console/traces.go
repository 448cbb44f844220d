package console

import (
	"container/list"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // exporters may compress (OTEL_EXPORTER_OTLP_COMPRESSION=gzip)
)

// Bounds of what one trace keeps, so that a runaway loop cannot fill
// memory through a single trace id.
const (
	maxSpansPerTrace = 2000
	maxAttributes    = 32
	maxValueLen      = 256
)

var traceIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Span is one span of a trace as the waterfall draws it.
type Span struct {
	SpanID       string            `json:"span_id"`
	ParentSpanID string            `json:"parent_span_id,omitempty"`
	Name         string            `json:"name"`
	Service      string            `json:"service"`
	Kind         string            `json:"kind"`
	Start        time.Time         `json:"start"`
	End          time.Time         `json:"end"`
	Error        bool              `json:"error"`
	Status       string            `json:"status,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	// OffsetMs and DurationMs place the span in its trace's waterfall.
	OffsetMs   float64 `json:"offset_ms"`
	DurationMs float64 `json:"duration_ms"`
}

// TraceSummary is a trace in the list.
type TraceSummary struct {
	TraceID    string    `json:"trace_id"`
	Root       string    `json:"root"`
	Service    string    `json:"service"`
	Start      time.Time `json:"start"`
	DurationMs float64   `json:"duration_ms"`
	Spans      int       `json:"spans"`
	Error      bool      `json:"error"`
	Services   []string  `json:"services"`
}

// Trace is a trace with its spans, parents before children where the
// parents are known.
type Trace struct {
	TraceSummary
	Spans        []Span `json:"spans"`
	DroppedSpans int    `json:"dropped_spans,omitempty"`
}

type storedTrace struct {
	id      string
	spans   []Span
	dropped int
	elem    *list.Element
}

// traceStore keeps the most recently updated traces, at most max.
type traceStore struct {
	max int
	// receiving is set before the store is shared and never changed.
	receiving bool

	mu     sync.Mutex
	byID   map[string]*storedTrace
	recent *list.List // of *storedTrace, most recently updated first
}

func newTraceStore(max int) *traceStore {
	return &traceStore{max: max, byID: map[string]*storedTrace{}, recent: list.New()}
}

// add stores the spans of one export.
func (s *traceStore) add(req *coltracepb.ExportTraceServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := "unknown"
		if v, ok := attr(rs.GetResource().GetAttributes(), "service.name"); ok && v != "" {
			service = v
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if len(sp.GetTraceId()) != 16 || len(sp.GetSpanId()) != 8 {
					continue
				}
				s.put(hex.EncodeToString(sp.GetTraceId()), convertSpan(sp, service))
			}
		}
	}
}

func (s *traceStore) put(id string, sp Span) {
	t := s.byID[id]
	if t == nil {
		t = &storedTrace{id: id}
		t.elem = s.recent.PushFront(t)
		s.byID[id] = t
		for s.recent.Len() > s.max {
			old := s.recent.Remove(s.recent.Back()).(*storedTrace)
			delete(s.byID, old.id)
		}
	} else {
		s.recent.MoveToFront(t.elem)
	}
	if len(t.spans) >= maxSpansPerTrace {
		t.dropped++
		return
	}
	t.spans = append(t.spans, sp)
}

func convertSpan(sp *tracepb.Span, service string) Span {
	out := Span{
		SpanID:  hex.EncodeToString(sp.GetSpanId()),
		Name:    sp.GetName(),
		Service: service,
		Kind:    spanKind(sp.GetKind()),
		Start:   time.Unix(0, int64(sp.GetStartTimeUnixNano())).UTC(),
		End:     time.Unix(0, int64(sp.GetEndTimeUnixNano())).UTC(),
		Error:   sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
		Status:  clip(sp.GetStatus().GetMessage()),
	}
	if len(sp.GetParentSpanId()) == 8 {
		out.ParentSpanID = hex.EncodeToString(sp.GetParentSpanId())
	}
	if out.End.Before(out.Start) {
		out.End = out.Start
	}
	for _, kv := range sp.GetAttributes() {
		if len(out.Attributes) == maxAttributes {
			break
		}
		if out.Attributes == nil {
			out.Attributes = map[string]string{}
		}
		out.Attributes[clip(kv.GetKey())] = clip(valueString(kv.GetValue()))
	}
	return out
}

func spanKind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	default:
		return "internal"
	}
}

func attr(kvs []*commonpb.KeyValue, key string) (string, bool) {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return valueString(kv.GetValue()), true
		}
	}
	return "", false
}

func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func clip(s string) string {
	if len(s) <= maxValueLen {
		return s
	}
	return s[:maxValueLen] + "…"
}

// summarize describes t; the root is the span without a parent in the
// trace (a trace whose root has not arrived yet shows its earliest span).
func summarize(t *storedTrace) TraceSummary {
	sum := TraceSummary{TraceID: t.id, Spans: len(t.spans) + t.dropped, Services: []string{}}
	if len(t.spans) == 0 {
		return sum
	}
	ids := make(map[string]bool, len(t.spans))
	for _, sp := range t.spans {
		ids[sp.SpanID] = true
	}
	start, end := t.spans[0].Start, t.spans[0].End
	var root *Span
	for i := range t.spans {
		sp := &t.spans[i]
		if sp.Start.Before(start) {
			start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		sum.Error = sum.Error || sp.Error
		if !slices.Contains(sum.Services, sp.Service) {
			sum.Services = append(sum.Services, sp.Service)
		}
		if root == nil || rootRank(sp, ids) < rootRank(root, ids) ||
			rootRank(sp, ids) == rootRank(root, ids) && sp.Start.Before(root.Start) {
			root = sp
		}
	}
	slices.Sort(sum.Services)
	sum.Root, sum.Service = root.Name, root.Service
	sum.Start = start
	sum.DurationMs = ms(end.Sub(start))
	return sum
}

// rootRank orders the candidates for a trace's root: a span without a
// parent, then one whose parent has not arrived, then any other.
func rootRank(sp *Span, ids map[string]bool) int {
	switch {
	case sp.ParentSpanID == "":
		return 0
	case !ids[sp.ParentSpanID]:
		return 1
	default:
		return 2
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// list returns up to limit traces, most recently updated first, of
// service when it is not empty.
func (s *traceStore) list(limit int, service string, errorsOnly bool) []TraceSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []TraceSummary{}
	for e := s.recent.Front(); e != nil && len(out) < limit; e = e.Next() {
		sum := summarize(e.Value.(*storedTrace))
		if service != "" && !slices.Contains(sum.Services, service) || errorsOnly && !sum.Error {
			continue
		}
		out = append(out, sum)
	}
	return out
}

func (s *traceStore) get(id string) (Trace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byID[id]
	if !ok {
		return Trace{}, false
	}
	out := Trace{TraceSummary: summarize(t), Spans: slices.Clone(t.spans), DroppedSpans: t.dropped}
	for i := range out.Spans {
		sp := &out.Spans[i]
		sp.OffsetMs = ms(sp.Start.Sub(out.Start))
		sp.DurationMs = ms(sp.End.Sub(sp.Start))
	}
	orderSpans(out.Spans)
	return out, true
}

// orderSpans sorts spans depth first (each parent before its children,
// siblings by start), as a waterfall reads.
func orderSpans(spans []Span) {
	children := map[string][]int{}
	ids := map[string]bool{}
	for _, sp := range spans {
		ids[sp.SpanID] = true
	}
	var roots []int
	for i, sp := range spans {
		if sp.ParentSpanID == "" || !ids[sp.ParentSpanID] {
			roots = append(roots, i)
		} else {
			children[sp.ParentSpanID] = append(children[sp.ParentSpanID], i)
		}
	}
	byStart := func(a, b int) int { return spans[a].Start.Compare(spans[b].Start) }
	slices.SortFunc(roots, byStart)
	out := make([]Span, 0, len(spans))
	seen := make(map[int]bool, len(spans))
	var walk func(i int)
	walk = func(i int) {
		if seen[i] {
			return // a span claiming an ancestor as its child
		}
		seen[i] = true
		out = append(out, spans[i])
		kids := children[spans[i].SpanID]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			walk(k)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	for i := range spans {
		if !seen[i] { // cycles without a root
			walk(i)
		}
	}
	copy(spans, out)
}

// receiver is the OTLP/gRPC trace service.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	store *traceStore
}

func (r receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.store.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// serveOTLP serves the trace receiver on ln until ctx is done.
func serveOTLP(ctx context.Context, ln net.Listener, store *traceStore, log *slog.Logger) error {
	g := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	coltracepb.RegisterTraceServiceServer(g, receiver{store: store})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		// Exporters flush on exit; give them a moment, then cut.
		t := time.AfterFunc(5*time.Second, g.Stop)
		g.GracefulStop()
		t.Stop()
	}()
	log.Info("receiving traces over OTLP", "addr", ln.Addr().String())
	// Serve returns nil once stopped; an error means the listener failed,
	// and the caller's context ends the stopper.
	if err := g.Serve(ln); err != nil {
		return fmt.Errorf("console: OTLP receiver: %w", err)
	}
	<-stopped
	return nil
}

func (c *Console) getTraces(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid_argument", "limit must be a number from 1 to 1000")
			return
		}
		limit = n
	}
	errorsOnly := false
	if v := q.Get("errors"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_argument", "errors must be true or false")
			return
		}
		errorsOnly = b
	}
	out := map[string]any{"traces": c.traces.list(limit, q.Get("service"), errorsOnly)}
	if !c.traces.receiving {
		out["note"] = "the console receives no traces: start it with an OTLP address"
	}
	writeJSON(w, out)
}

func (c *Console) getTrace(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !traceIDRE.MatchString(id) {
		writeError(w, http.StatusBadRequest, "invalid_argument", "a trace id is 32 lowercase hex digits")
		return
	}
	t, ok := c.traces.get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no trace "+id+" (only the most recent are kept)")
		return
	}
	writeJSON(w, t)
}
