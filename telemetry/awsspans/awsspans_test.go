package awsspans

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestAddedOnce: a configuration given Instrument, whose client also gets APIOption (as
// an AWS Secrets Manager store built from an instrumented configuration does), has the
// spans' middleware once; a duplicate ID would fail every call.
func TestAddedOnce(t *testing.T) {
	tp := noop.NewTracerProvider()
	var cfg aws.Config
	Instrument(&cfg, tp)
	Instrument(&cfg, tp)
	stack := middleware.NewStack("op", smithyhttp.NewStackRequest)
	for _, opt := range append(cfg.APIOptions, APIOption(tp)) {
		if err := opt(stack); err != nil {
			t.Fatalf("adding the spans again: %v", err)
		}
	}
	n := 0
	for _, id := range stack.Initialize.List() {
		if id == spanID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the span middleware is in the stack %d times, want once: %v", n, stack.Initialize.List())
	}
}
