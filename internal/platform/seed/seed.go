// Package seed names the demo accounts that marquee dev creates, so each
// service can seed its own part of the demo (identity the accounts,
// profiles the profiles, playback the plan and viewing history, billing
// the subscription) without asking another service. Seeding happens only
// when a service is given the credentials file (marquee dev passes
// --credentials); a production deployment seeds nothing.
package seed

import (
	"encoding/json"
	"fmt"
	"os"
)

// Well-known ids of the demo accounts.
const (
	DemoAccountID  = "00000000-0000-4000-8000-00000000de70"
	AdminAccountID = "00000000-0000-4000-8000-00000000ad70"
)

// DemoPlan is the plan the demo viewer subscribes to.
const DemoPlan = "premium"

// Credentials are the accounts marquee dev creates, as written to
// credentials.json: {"demo":{"email","password"},"admin":{...}}.
type Credentials struct {
	Demo  Account `json:"demo"`
	Admin Account `json:"admin"`
}

// Account is one set of sign-in credentials.
type Account struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Load reads a credentials file.
func Load(path string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("seed: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("seed: %s: %w", path, err)
	}
	if c.Demo.Email == "" || c.Demo.Password == "" || c.Admin.Email == "" || c.Admin.Password == "" {
		return c, fmt.Errorf("seed: %s: demo and admin need an email and a password", path)
	}
	return c, nil
}

// Profile is a demo profile of the demo account.
type Profile struct {
	ID, Name, Maturity, Language string
}

// DemoProfiles are the demo viewer's profiles; the last is a kids profile.
var DemoProfiles = []Profile{
	{ID: "00000000-0000-4000-8000-0000000000a1", Name: "Alex", Maturity: "adult", Language: "en"},
	{ID: "00000000-0000-4000-8000-0000000000a2", Name: "Sam", Maturity: "teen", Language: "en"},
	{ID: "00000000-0000-4000-8000-0000000000a3", Name: "Kids", Maturity: "kids", Language: "en"},
}
