// Package awsiam rotates the access keys of one IAM user with aws-sdk-go-v2.
//
// IAM makes the secret, so the Rotator is a rotators.Minter; a revoked key is first
// deactivated, which a rollback can undo, and deleted later, so it is also a
// rotators.Purger; and the user's keys show what a Mint left that the store never got,
// so it is a rotators.Sweeper. A version's material is the key pair (access_key_id,
// secret_access_key); its metadata is the key ID and the user name (access_key_id, user),
// never the secret.
//
// # Steps
//
// Mint lists the user's keys (iam:ListAccessKeys), then:
//
//  1. deletes every key an interrupted earlier Mint of the same version created: its
//     secret never reached the store, so nobody can use it, and it takes one of the
//     user's two slots. Such a key is found on IAM itself, not only from the heartbeat
//     hint (MintRequest.Abandoned), which a worker killed right after CreateAccessKey
//     never sends: it is a key of the user that no version the store keeps holds
//     (MintRequest.Known) and whose CreateDate is at or after the rotation's start
//     (MintRequest.Since) less a margin of five seconds. The margin covers CreateDate's
//     one-second resolution and clock skew between the Temporal server, whose clock
//     Since comes from, and AWS; its price is that a key made by hand in those seconds
//     before a rotation, and never recorded, is deleted as an orphan too. A key older
//     than that, or one the store holds, is never deleted here, and neither is the
//     current version's key;
//  2. makes room if the user still has two keys (see below);
//  3. creates the key (iam:CreateAccessKey) and reports its ID through MintRequest.Minted
//     before anything else can fail, so that a step interrupted from here on passes it
//     back as abandoned.
//
// Sweep runs step 1 alone (iam:ListAccessKeys, iam:DeleteAccessKey): the rollback of a
// Create that gave up after IAM made the key calls it with the time the Create began, and
// it returns the key IDs it deleted.
//
// Apply makes the key Active (iam:UpdateAccessKey). A new key already is; for a rollback
// this reactivates a deactivated key. A deleted key cannot come back: Apply then fails with
// rotators.ErrCredentialRejected.
//
// Test asks IAM, as the admin, whether the key is listed under the user and Active, then
// calls sts:GetCallerIdentity signed with the key itself, through the admin's region,
// endpoint and HTTP client, and checks that the caller is the user
// (arn:<partition>:iam::<account>:user/<path>/<user>). GetCallerIdentity needs no
// permission, so the key under test needs no policy at all. A key IAM lists as inactive or
// does not list is rejected at once; a wrong principal wraps rotators.ErrCheckFailed.
//
// Revoke deactivates the key (iam:UpdateAccessKey, Inactive). Purge, PurgeAfter
// (Config.DeleteAfter) later, deletes it (iam:DeleteAccessKey). Both count a key that is
// already gone as done, and both leave alone the key of RevokeRequest.Keep. Purge also
// leaves a key that is Active again, since someone reactivated it after Revoke to use it.
//
// # The two-key limit
//
// IAM allows two access keys per user, and a rotation needs a slot for the new key while
// the current one keeps working. When the user already has two keys, the one that is not
// the current version's key is deleted only if it is Inactive and Config.DeleteInactive is
// set; otherwise Mint fails with rotators.ErrInvalidConfig, naming the key, its status and
// what to do, and changes nothing. An active key is never deleted: something Keyturn does
// not know of may use it. With DeleteAfter longer than the time between rotations, the
// previous rotation's deactivated key still holds the slot at the next one; set
// DeleteInactive, or keep DeleteAfter shorter than the schedule's interval.
//
// # Eventual consistency
//
// IAM changes reach STS and the other services seconds after IAM answers. A new or
// reactivated key may be refused (InvalidClientTokenId) for a while, so Test retries a
// refused key with backoff (250ms doubling to 2s) for up to Config.ConsistencyTimeout,
// default 30s, or until one second before the context's deadline if that comes first.
// The Test activity's timeout must therefore exceed ConsistencyTimeout. What IAM itself
// reports is not retried: IAM is where the status is written.
//
// moto 5.2.1, which the tests run against, differs from AWS: its STS accepts an Inactive
// key, and unless IAM is enforced (INITIAL_NO_AUTH_ACTION_COUNT) it checks no signature and
// answers for an unknown key with a default identity (user/moto). Test's IAM step is what
// rejects inactive and deleted keys there; on AWS it only answers sooner.
//
// # Deactivate, then delete
//
// Revoke only deactivates, so a rollback within DeleteAfter restores the old key by
// reactivating it (Apply): the material in the store still works. After Purge the key is
// gone for good. DeleteAfter 0 purges right after Revoke.
//
// # In use
//
// The Rotator is a rotators.UsageReporter: before the revoke, the gate asks InUse whether
// the old key is still used, and InUse asks IAM when it was last used
// (iam:GetAccessKeyLastUsed). A last use after UsageRequest.Since, the promotion, is a
// consumer that has not moved; the Use names the key ID and, in Detail, the service and
// region of that last request. IAM keeps no more than that: not who called, from where,
// or how often, and only the latest use.
//
// IAM's last-used data lags. GetAccessKeyLastUsed's reference gives no figure; AWS
// documents that IAM's last accessed information "usually appears within 4 hours"
// (LastUsedDelay). So an idle answer sets Usage.NotBefore to the promotion plus
// LastUsedDelay, and the revoke gate does not take it for idle before then: it keeps
// waiting, and if max_wait ends first its `then` applies as for a use. A gate that
// should release an unused key needs grace plus max_wait of at least LastUsedDelay;
// the inventory's validation warns when they are shorter. A key that IAM no longer
// knows is idle at once.
//
// What the tests could prove on moto 5.2.1: moto records a key's last use at once, with
// the service and region, on every request it receives signed with the key (in
// moto/core/responses.py, before the request is even authorised), so a use after the
// promotion is reported, a use before it is not, a key never used has no date, and a
// deleted key answers NoSuchEntity. What they could not: AWS's delay, which moto does
// not imitate; which requests AWS counts as a use (moto counts every one, and records
// nothing for an unsigned request); AWS's answer for a deleted key; and the resolution of
// AWS's LastUsedDate.
//
// # Permissions of the admin principal
//
// iam-policy.json in this directory is the least privilege: iam:ListAccessKeys,
// iam:CreateAccessKey, iam:UpdateAccessKey, iam:DeleteAccessKey and, for the revoke gate,
// iam:GetAccessKeyLastUsed on
// arn:aws:iam::ACCOUNT_ID:user/USER_NAME (a user with a path is user/PATH/USER_NAME).
// The admin must not be the rotated user: a rotation would revoke its own credential.
//
// # Errors
//
// AccessDenied, AccessDeniedException and UnauthorizedOperation on the admin's calls, and
// admin credentials AWS does not accept, wrap rotators.ErrPermissionDenied, naming the
// action. A missing user or an inventory that cannot work wraps rotators.ErrInvalidConfig.
// No error holds a secret access key.
package awsiam
