package mototest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// CreateIAMUser creates an IAM user in moto with the given inline policies (JSON
// documents, which moto checks for syntax) and an access key, and returns the key's
// credentials. It makes 2 + len(policies) IAM calls, signed with the test credentials;
// a server started with INITIAL_NO_AUTH_ACTION_COUNT set to that number lets exactly
// these calls through and checks every later call against the user's policies.
//
// moto evaluates Secrets Manager calls against the resource "*" only, so a policy scoped
// to secret ARNs grants nothing there: use it to test refusals, not a policy's scope.
func (s *Server) CreateIAMUser(t testing.TB, user string, policies ...string) aws.Credentials {
	t.Helper()
	s.iamCall(t, url.Values{"Action": {"CreateUser"}, "UserName": {user}}, nil)
	for i, doc := range policies {
		s.iamCall(t, url.Values{
			"Action":         {"PutUserPolicy"},
			"UserName":       {user},
			"PolicyName":     {user + "-policy-" + strconv.Itoa(i+1)},
			"PolicyDocument": {doc},
		}, nil)
	}
	var out struct {
		AccessKeyID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		SecretAccessKey string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	s.iamCall(t, url.Values{"Action": {"CreateAccessKey"}, "UserName": {user}}, &out)
	if out.AccessKeyID == "" || out.SecretAccessKey == "" {
		t.Fatalf("moto CreateAccessKey for %s returned no key", user)
	}
	return aws.Credentials{AccessKeyID: out.AccessKeyID, SecretAccessKey: out.SecretAccessKey, Source: "mototest"}
}

// iamCall sends one IAM Query API call, SigV4-signed as real clients do (moto routes a
// request to a service by its credential scope), and decodes the XML answer into out.
func (s *Server) iamCall(t testing.TB, params url.Values, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	params.Set("Version", "2010-05-08")
	body := params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatalf("build IAM %s request: %v", params.Get("Action"), err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "iam", Region, time.Now()); err != nil {
		t.Fatalf("sign IAM %s request: %v", params.Get("Action"), err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("IAM %s: %v", params.Get("Action"), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("IAM %s: read answer: %v", params.Get("Action"), err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("IAM %s: HTTP %d: %s", params.Get("Action"), resp.StatusCode, data)
	}
	if out != nil {
		if err := xml.Unmarshal(data, out); err != nil {
			t.Fatalf("IAM %s: decode answer: %v", params.Get("Action"), err)
		}
	}
}
