// Package awssm is the AWS Secrets Manager store: each Keyturn secret is one Secrets
// Manager secret, named NamePrefix + secret ID, and Keyturn's three stages are AWS's
// native staging labels, so consumers and AWS's caching clients read AWSCURRENT as usual.
//
//	pending  = AWSPENDING   staged, not yet tested; never left on a version that is not current
//	current  = AWSCURRENT   what consumers read
//	previous = AWSPREVIOUS  the version before, for rollback and for the grace period
//
// # Versions and tokens
//
// A version is stored with PutSecretValue under ClientRequestToken (so VersionId)
// VersionID(token), the hex SHA-256 of the token: AWS wants 32 to 64 letters, digits and
// hyphens, and a derived ID makes a retried stage find the version its first attempt
// stored. The SecretString is one JSON object:
//
//	{
//	  "password": "...",        material fields
//	  "username": "app_a",      metadata, as plain fields for consumers
//	  "keyturn": {              bookkeeping: no material
//	    "format": 1, "token": "rotate/prod/db/app/<run-id>", "number": 7,
//	    "created_at": "2026-11-23T10:00:00Z", "metadata": {"username": "app_a"}
//	  }
//	}
//
// The top level is what AWS's own tools read. A database version's metadata and material
// (rotators/postgres: engine, host, port, dbname, username, role, strategy; password) make
// it AWS's documented structure for database credentials, so RDS Proxy, AWS's JDBC
// wrapper and the caching clients read it unchanged; the metadata key "port" is written
// as a JSON number there (stores.ConsumerMetadataValue), as that structure has it, and as
// text in the bookkeeping, which is what Keyturn reads back. Values written before those
// fields existed (username only) read as before. Material and metadata share the top
// level, so a name may be one or the other, and neither may be "keyturn".
//
// Version numbers come from the secret's tag keyturn:next-number, advanced before each
// new version is stored, so numbers increase and are never reused even though superseded
// and discarded versions lose their labels and drop out of sight. Versions Keyturn did not
// write (no "keyturn" key) are shown with token ForeignTokenPrefix + VersionId and number
// 0; they can be read and promoted back.
//
// # The placeholder
//
// AWS attaches AWSCURRENT to the first version of a secret whatever labels the call asks
// for. So that a first, untested pending version never reaches consumers, a new secret is
// created with a placeholder value, {"keyturn":{"format":1,"placeholder":true}}, as
// AWSCURRENT; the store reads it as "no current version", and the first promote replaces
// it. Until then consumers find no credential fields in AWSCURRENT.
//
// # Consistency
//
// Promote is one UpdateSecretVersionStage call, atomic in AWS, guarded by naming the
// version it takes AWSCURRENT from; a racing promote gets stores.ErrConflict. Every read
// names a label or a VersionId: never rely on GetSecretValue's default.
//
// # Errors
//
// Errors wrap the errors of package stores, plus ErrAccessDenied (fix the IAM policy,
// retrying will not help) and ErrUnavailable (the service could not be reached or failed
// on its side after the SDK's retries; retry later). They name secrets and versions,
// never material.
//
// # IAM
//
// The least-privilege policy for a worker whose store has NamePrefix "keyturn/" (also in
// iam-policy.json; replace the prefix with yours). Secret ARNs end in a random suffix,
// which the trailing * covers.
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [
//	    {
//	      "Sid": "KeyturnManagesItsSecrets",
//	      "Effect": "Allow",
//	      "Action": [
//	        "secretsmanager:CreateSecret",
//	        "secretsmanager:PutSecretValue",
//	        "secretsmanager:UpdateSecretVersionStage",
//	        "secretsmanager:GetSecretValue",
//	        "secretsmanager:DescribeSecret",
//	        "secretsmanager:ListSecretVersionIds"
//	      ],
//	      "Resource": "arn:aws:secretsmanager:*:*:secret:keyturn/*"
//	    },
//	    {
//	      "Sid": "KeyturnTagsOnlyItsVersionCounter",
//	      "Effect": "Allow",
//	      "Action": "secretsmanager:TagResource",
//	      "Resource": "arn:aws:secretsmanager:*:*:secret:keyturn/*",
//	      "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["keyturn:next-number"]}}
//	    }
//	  ]
//	}
//
// Resolving awssm:<name>#<field> references (ReadField) needs secretsmanager:GetSecretValue
// on those secrets too. Secrets encrypted with a customer managed KMS key also need
// kms:Decrypt and kms:GenerateDataKey on that key; the default aws/secretsmanager key
// needs nothing more.
package awssm
