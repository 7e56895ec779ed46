package bench

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// payloadRecorder is a payload codec that wraps another (the production codec) and
// measures what comes out of it: every payload a client or worker sends to the server
// passes through Encode, so its size there is the size the server checks against its
// limits. Decode passes through.
type payloadRecorder struct {
	inner converter.PayloadCodec

	mu       sync.Mutex
	count    int
	largest  int
	what     string
	overWarn map[string]int // shape -> largest size, for payloads above the warning limit
	// overflowAt is when a payload above the error limit was first seen; zero if none.
	overflowAt time.Time
}

// sizedPayload is one shape of payload and the largest size seen of it.
type sizedPayload struct {
	what string
	size int
}

// Encode implements converter.PayloadCodec. What each call encodes becomes one Payloads
// field of a request (an activity's input, a workflow's result...), which is what the
// server's blob size limit applies to.
func (r *payloadRecorder) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := r.inner.Encode(ps)
	if err != nil {
		return out, err
	}
	size := proto.Size(&commonpb.Payloads{Payloads: out})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	if size <= r.largest && size <= payloadWarnLimit {
		return out, nil
	}
	// Rare (a new largest or a large one): describe it from the plaintext, by shape only.
	what := describePayloads(ps)
	if size > r.largest {
		r.largest, r.what = size, what
	}
	if size > payloadWarnLimit {
		r.overWarn[what] = max(r.overWarn[what], size)
	}
	if size > payloadErrorLimit && r.overflowAt.IsZero() {
		r.overflowAt = time.Now()
	}
	return out, nil
}

// Decode implements converter.PayloadCodec.
func (r *payloadRecorder) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return r.inner.Decode(ps)
}

// reset forgets what was recorded (the seeding's and the setup's payloads).
func (r *payloadRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count, r.largest, r.what, r.overWarn, r.overflowAt = 0, 0, "", map[string]int{}, time.Time{}
}

// overflowed says since when a payload above the error limit has been seen, if one has.
func (r *payloadRecorder) overflowed() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.overflowAt, !r.overflowAt.IsZero()
}

// figures returns the largest payload and its shape, the number of Encode calls and the
// shapes above the warning limit, largest first.
func (r *payloadRecorder) figures() (largest int, what string, count int, overWarn []sizedPayload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w, s := range r.overWarn {
		overWarn = append(overWarn, sizedPayload{w, s})
	}
	sort.Slice(overWarn, func(i, j int) bool { return overWarn[i].size > overWarn[j].size })
	return r.largest, r.what, r.count, overWarn
}

// describePayloads says what payloads hold by their JSON shape: field names and sizes,
// never values, so nothing a payload carries (role names, tokens) reaches the output.
func describePayloads(ps []*commonpb.Payload) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		enc := string(p.GetMetadata()[converter.MetadataEncoding])
		if enc != converter.MetadataEncodingJSON {
			parts = append(parts, fmt.Sprintf("%s (%d B)", enc, len(p.GetData())))
			continue
		}
		parts = append(parts, describeJSON(p.GetData(), 2))
	}
	return strings.Join(parts, "; ")
}

// describeJSON describes a JSON value: an object by its largest fields (the largest
// described again, depth levels down), an array by its length and its first element.
func describeJSON(data []byte, depth int) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) == nil {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return len(obj[keys[i]]) > len(obj[keys[j]]) })
		parts := make([]string, 0, min(len(keys), 6))
		for i, k := range keys[:min(len(keys), 6)] {
			part := fmt.Sprintf("%s %d B", k, len(obj[k]))
			if i == 0 && depth > 0 && len(obj[k]) > 64 {
				part += ": " + describeJSON(obj[k], depth-1)
			}
			parts = append(parts, part)
		}
		return fmt.Sprintf("{%s}", strings.Join(parts, ", "))
	}
	var arr []json.RawMessage
	if json.Unmarshal(data, &arr) == nil {
		s := fmt.Sprintf("[%d items", len(arr))
		if len(arr) > 0 {
			var first map[string]json.RawMessage
			if json.Unmarshal(arr[0], &first) == nil {
				keys := make([]string, 0, len(first))
				for k := range first {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				s += " of {" + strings.Join(keys, ",") + "}"
			}
		}
		return s + "]"
	}
	return fmt.Sprintf("JSON scalar (%d B)", len(data))
}
