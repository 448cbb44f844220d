// Package gen holds the Go generated from the contracts in proto/.
// Nothing here is edited by hand; regenerate it with:
//
//	go generate ./gen
package gen

//go:generate bash ../scripts/protogen.sh
