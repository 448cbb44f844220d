// Package openapi embeds the API description generated from the protos.
package openapi

import _ "embed"

// Swagger is the merged OpenAPI 2.0 document of every HTTP route.
//
//go:embed marquee.swagger.json
var Swagger []byte
