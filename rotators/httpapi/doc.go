// Package httpapi rotates the API key of a third-party HTTP API, described declaratively:
// three calls (create, test, revoke) whose URL, headers and body are Go text/template
// templates, and two JSON paths that find the new key's ID and secret in the create
// response. It is a rotators.Minter: the API makes the key, Keyturn stores it.
//
// # Steps
//
// Mint sends Create as the admin ({{.Admin}}) with the header
//
//	Idempotency-Key: <version token>
//
// which the rotator always sets itself. It reads the key's ID (Config.KeyIDPath) and
// secret (Config.KeySecretPath) from the response, reports the ID through
// MintRequest.Minted at once, then deletes, with Revoke, every key in
// MintRequest.Abandoned other than the one it got. The material is "key_id" and
// "key_secret"; the metadata is "key_id" (an identifier, not a secret).
//
// Apply does nothing: the key works from creation, and an API cannot bring back a key it
// deleted, so a version once revoked cannot be re-enabled.
//
// Test sends Test with the version's key ({{.KeyID}}, {{.Secret}}). A success status
// means the key works; 401, 403 or one of Test's gone statuses wrap
// rotators.ErrCredentialRejected; any other 4xx wraps rotators.ErrCheckFailed (the key is
// accepted but may not make the call); 5xx, 408, 425, 429 and network failures are plain
// errors, which the workflow retries. Material whose key_id is not the version's is
// rejected without a request, since the API would only be vouching for another key.
//
// Revoke sends Revoke as the admin with the version's {{.KeyID}} and the header
// Idempotency-Key: <version token>/revoke. A success or gone status is success, so a
// second Revoke, or one of a key deleted by hand, is harmless (list 404 under gone for
// an API that answers 404 for a deleted key). It never deletes the key of
// RevokeRequest.Keep.
//
// # In use
//
// An API that can say whether a key is still used may declare a fourth call, InUse (the
// inventory's in_use block), for the revoke gate. It is sent as the admin with the old
// version's {{.KeyID}} (never with the old key itself, which would be a use), no
// Idempotency-Key, method GET unless set, and its answer is read at one JSON path:
//
//   - last_used (UsageCheck.LastUsedPath): when the key was last used, an RFC 3339
//     string, Unix seconds or null for never; the key is in use when that is after the
//     promotion;
//   - flag (UsageCheck.FlagPath): a boolean by which the API says, by its own rule,
//     whether the key is in use.
//
// A gone status means the key no longer exists, which is idle. The call must only read:
// that is the API's promise for the endpoint declared, not something Keyturn can check.
//
// New's *Rotator never reports usage. Build, which the worker uses, returns it as a
// rotators.UsageReporter only when InUse is declared; otherwise the kind cannot tell,
// and the revoke gate relies on the grace period alone rather than on a rotator that
// would call every key idle. Many APIs record a key's last use late or coarsely (to the
// hour or the day): such an API declares how late as UsageCheck.Delay (in_use.delay),
// and an idle answer then sets rotators.Usage.NotBefore to the promotion plus the delay,
// before which the revoke gate does not take it for idle. Without a declared delay the
// first idle answer releases the gate, however long its max_wait.
//
// Create and Revoke failures: 401 and 403 wrap rotators.ErrPermissionDenied; a 2xx not
// listed under success, 3xx (the rotator follows no redirect), 400, 422 and the other 4xx
// wrap rotators.ErrInvalidConfig;
// 5xx, 408, 409 (a request with the same idempotency key still in flight), 425, 429 and
// network failures are plain, retryable errors.
//
// # Idempotency
//
// A step interrupted after Create may run Mint again with the same token. An API that
// honours Idempotency-Key on POST (as Stripe's does, and many modelled on it) answers the repeated Create
// with the same key, which Mint returns again and does not delete. An API that ignores
// the header makes a second key; the first one's ID was reported through Minted, so it
// arrives in Abandoned and Mint deletes it. Each such deletion has its own idempotency
// key, <token>/revoke/<key id>, so that it cannot be mistaken for another one. The body
// of Create should depend only on the data (the secret ID, the token), so that a repeat
// is the same request; an API that sees a different body under the same key refuses it.
//
// The Rotator is not a rotators.Sweeper: a Create that gives up after the API made a key
// (its retries run out, or the store refuses the version) leaves that key, and the
// rollback cannot remove it. The declared calls cannot list keys, and sending Create again
// under the same Idempotency-Key to learn the key's ID would make a new key on an API
// that ignores the header (or has forgotten the key), which a failed Revoke would then
// leave behind too.
//
// # Templates
//
// Templates see Data: {{.SecretID}}, {{.Token}}, {{.KeyID}}, {{.Admin}} and {{.Secret}},
// and two functions besides text/template's own: json quotes a string for a JSON body
// ({"name": {{json .SecretID}}}), base64 encodes one (Basic auth:
// {{printf "%s:" .Secret | base64}}). A body is sent as application/json unless the call
// sets Content-Type.
//
// Only Create and Revoke see .Admin, and only Test sees .Secret; New refuses a call that
// uses one it will not get, a Test that sends no .Secret (it would prove nothing) and a
// Test that uses .Admin (it would prove nothing about the key).
//
// # The URL rule
//
// No URL may use .Admin or .Secret, in its path or its query: URLs end up in access logs,
// proxies, browser histories and error messages. New refuses such a template, naming the
// call and the field, and at run time a URL is executed with both empty anyway. Put the
// credential in a header or the body instead.
//
// A URL's scheme and host must be written out; templates fill in only the path and the
// query, because the key ID comes from the API's response and must not be able to send
// the admin credential elsewhere. Every value a URL template inserts is percent-encoded
// (all but letters, digits and -._~), so it stays one path segment or one query value.
// Errors name a request as its method and scheme://host/path, without the query, and
// never quote a response body, which may hold a secret. Responses are read up to 1 MiB.
//
// # Least privilege
//
// The admin credential should be able to create and delete API keys and nothing else (a
// scoped token whose only permission is key management), so that a leak of the worker's
// configuration cannot read or change the account's data. The rotated keys need
// whatever the application needs; Test should call an endpoint that proves that, so a
// key without the privilege fails the rotation with ErrCheckFailed instead of breaking
// the application.
package httpapi
