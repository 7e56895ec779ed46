package postgres

import "github.com/keyturn/keyturn/stores"

// Keys of the connection metadata Generate writes beside the user name, so that a version
// read as one JSON object (Vault KV v2, AWS Secrets Manager) is AWS's documented
// structure for database credentials, which RDS Proxy, AWS's JDBC wrapper and the Secrets
// Manager caching clients read: engine, host, port, dbname, username, password. They
// describe the server as the inventory names it (Config.Host, Port, Database).
const (
	// MetadataEngine is the database engine, always EnginePostgres.
	MetadataEngine = "engine"
	// MetadataHost is the server's host name or address.
	MetadataHost = "host"
	// MetadataPort is the server's TCP port, in decimal. Stores write it as a JSON
	// number (stores.FieldPort).
	MetadataPort = stores.FieldPort
	// MetadataDBName is the database the credential was tested against.
	MetadataDBName = "dbname"
	// EnginePostgres is MetadataEngine's value, AWS's name for PostgreSQL.
	EnginePostgres = "postgres"
)
