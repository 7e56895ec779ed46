// Package awsspans traces the AWS API calls Keyturn makes (Secrets Manager, IAM, STS): a
// client span per operation, retries included, with the semantic-convention attributes
// of AWS SDK calls (rpc.system.name=aws-api, rpc.method=Service/Operation,
// cloud.region, aws.request_id, server.address, server.port, http.response.status_code,
// error.type), on an explicitly given tracer provider.
//
// Inputs and outputs are never read, so a SecretString or an access key's secret never
// becomes an attribute, and a failure is told by its AWS error code, not its message.
// It is a small smithy middleware of Keyturn's own: the contrib otelaws module is
// deprecated upstream, links the DynamoDB, SNS and SQS clients in for their attribute
// setters, and puts the error message in the span's status.
package awsspans

import (
	"context"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/telemetry/internal/spanerr"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/keyturn/keyturn/telemetry/awsspans"

// SystemName is rpc.system.name of every span.
const SystemName = "aws-api"

// Instrument makes every client built from cfg trace its calls on tp. It appends to a
// copy of cfg.APIOptions, so other copies of the configuration are not changed. A nil
// tp leaves cfg as it is. A client that also gets APIOption (or is instrumented twice)
// traces each call once: the first option added wins.
func Instrument(cfg *aws.Config, tp trace.TracerProvider) {
	if opt := APIOption(tp); opt != nil {
		cfg.APIOptions = append(slices.Clip(cfg.APIOptions), opt)
	}
}

// APIOption is the client option that adds the spans to a client's middleware stack,
// for a client's Options.APIOptions; nil for a nil tp.
func APIOption(tp trace.TracerProvider) func(*middleware.Stack) error {
	if tp == nil {
		return nil
	}
	m := spans{tracer: tp.Tracer(ScopeName)}
	return m.add
}

type spans struct{ tracer trace.Tracer }

type spanKey struct{}

// spanID names the middleware in the stack; add leaves a stack that has it as it is.
const spanID = "KeyturnSpan"

func (m spans) add(stack *middleware.Stack) error {
	// Once per stack: a configuration given Instrument can reach a client that adds
	// APIOption too (a store built from an instrumented configuration), and a second
	// middleware of the same ID would make every call fail.
	if _, ok := stack.Initialize.Get(spanID); ok {
		return nil
	}
	// After the SDK's own initialize middleware, which names the service, the operation
	// and the region.
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc(spanID, m.operation), middleware.After); err != nil {
		return err
	}
	// Before the others of its step, so it sees each attempt's response as the SDK
	// finished reading it.
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("KeyturnSpanResponse", response), middleware.Before)
}

// operation wraps one API operation, retries included, in a span.
func (m spans) operation(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
	name := service + "/" + op
	ctx, span := m.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		semconv.RPCSystemNameKey.String(SystemName),
		semconv.RPCMethod(name),
		semconv.CloudRegion(awsmiddleware.GetRegion(ctx)),
	))
	defer span.End()
	out, md, err := next.HandleInitialize(context.WithValue(ctx, spanKey{}, span), in)
	if err != nil {
		spanerr.Set(span, err)
	}
	return out, md, err
}

// response records where an attempt went and what came back: the endpoint, the HTTP
// status and the request ID. Nothing of either body.
func response(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return out, md, err
	}
	if req, ok := in.Request.(*smithyhttp.Request); ok && req.URL != nil {
		span.SetAttributes(semconv.ServerAddress(req.URL.Hostname()))
		if port, perr := strconv.Atoi(req.URL.Port()); perr == nil {
			span.SetAttributes(semconv.ServerPort(port))
		}
	}
	if res, ok := out.RawResponse.(*smithyhttp.Response); ok {
		span.SetAttributes(semconv.HTTPResponseStatusCode(res.StatusCode))
	}
	if id, ok := awsmiddleware.GetRequestIDMetadata(md); ok {
		span.SetAttributes(semconv.AWSRequestID(id))
	}
	return out, md, err
}
