//go:build linux

package main

import (
	"context"
	"net"

	"google.golang.org/grpc"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
)

// startApp serves the upstream every path ends at: a catalog answering
// GetTitle with a fixed title (a request of a few bytes, an answer of
// about a hundred), over h2c on a loopback port.
func startApp() (addr string, stop func(), err error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(s, fakeCatalog{})
	go s.Serve(lis)
	return lis.Addr().String(), s.Stop, nil
}

type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
}

// GetTitle answers any id with the same title.
func (fakeCatalog) GetTitle(_ context.Context, req *catalogv1.GetTitleRequest) (*catalogv1.GetTitleResponse, error) {
	return &catalogv1.GetTitleResponse{Title: &catalogv1.Title{
		Id: req.GetId(), Name: "Benchmark", Kind: "movie", Year: 2026, Genres: []string{"drama"},
		MaturityRating: "PG", DurationSeconds: 5400,
	}}, nil
}
