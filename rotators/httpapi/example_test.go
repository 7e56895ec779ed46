package httpapi_test

import (
	"fmt"

	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/secret"
)

// exampleConfig is the configuration for an apitest server, built the way an inventory
// entry for a real API is: create and revoke as the admin, test as the key itself.
func exampleConfig(s *apitest.Server) httpapi.Config {
	return configFor(s.URL(), s.AdminToken())
}

// configFor is exampleConfig for any server with apitest's endpoints.
func configFor(base, admin string) httpapi.Config {
	return httpapi.Config{
		Create: httpapi.Call{
			Method:  "POST",
			URL:     base + "/v1/keys",
			Headers: map[string]string{"Authorization": "Bearer {{.Admin}}"},
			Body:    `{"name": {{json .SecretID}}, "description": {{printf "keyturn %s" .Token | json}}}`,
			Success: []int{201},
		},
		Test: httpapi.Call{
			Method:  "GET",
			URL:     base + "/v1/whoami",
			Headers: map[string]string{"Authorization": "Bearer {{.Secret}}"},
		},
		Revoke: httpapi.Call{
			Method:  "DELETE",
			URL:     base + "/v1/keys/{{.KeyID}}",
			Headers: map[string]string{"Authorization": "Bearer {{.Admin}}"},
			Gone:    []int{404},
		},
		KeyIDPath:     "data.id",
		KeySecretPath: "data.secret",
		Admin:         secret.NewSensitive(admin),
	}
}

// A Stripe-like API: keys are created with a form body and Basic auth, and an already
// deleted key answers 404.
func ExampleNew() {
	r, err := httpapi.New(httpapi.Config{
		Create: httpapi.Call{
			URL: "https://api.example.com/v1/api_keys",
			Headers: map[string]string{
				"Authorization": `Basic {{printf "%s:" .Admin | base64}}`,
				"Content-Type":  "application/x-www-form-urlencoded",
			},
			Body: "name={{.SecretID | urlquery}}&metadata[keyturn_token]={{.Token | urlquery}}",
		},
		Test: httpapi.Call{
			URL:     "https://api.example.com/v1/balance",
			Headers: map[string]string{"Authorization": `Basic {{printf "%s:" .Secret | base64}}`},
		},
		Revoke: httpapi.Call{
			URL:     "https://api.example.com/v1/api_keys/{{.KeyID}}",
			Headers: map[string]string{"Authorization": `Basic {{printf "%s:" .Admin | base64}}`},
			Gone:    []int{404},
		},
		KeyIDPath:     "id",
		KeySecretPath: "secret",
		// In a worker the inventory's admin reference (env:NAME, file:path#field) is
		// resolved into this value.
		Admin: secret.NewSensitive("rk_example_admin"),
	})
	fmt.Println(r != nil, err)
	// Output: true <nil>
}
