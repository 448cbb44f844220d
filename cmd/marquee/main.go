// Command marquee is the one binary of the Marquee platform: every service,
// the gateway, the platform programs and the tools that drive them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `marquee: a video-streaming platform of microservices

Usage:
  marquee dev [flags]            run the whole system on this machine
  marquee serve SERVICE [flags]  run one service instance (%s)
  marquee gateway [flags]        run the API gateway
  marquee control-plane [flags]  run the mesh control plane and the console
  marquee sidecar [flags]        run a mesh sidecar beside a service instance
  marquee status                 instances, versions and health of a running system
  marquee mesh get|apply|render|history
                                 show and change the mesh policy
  marquee saga list|show|retry|compensate
                                 inspect and operate sagas of a running system
  marquee version                print version and build info

Run 'marquee COMMAND -h' for a command's flags. Every flag can also be set
with an environment variable MARQUEE_<FLAG>, e.g. MARQUEE_POSTGRES.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "marquee:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, usage, serviceNames())
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest)
	case "serve":
		return runServe(ctx, rest)
	case "gateway":
		return runGateway(ctx, rest)
	case "control-plane":
		return runControlPlane(ctx, rest)
	case "sidecar":
		return runSidecar(ctx, rest)
	case "status":
		return runStatus(ctx, rest)
	case "mesh":
		return runMesh(ctx, rest)
	case "saga":
		return runSaga(ctx, rest)
	case "nats":
		return runNATS(ctx, rest)
	case "version", "--version":
		return runVersion(rest)
	case "help", "-h", "--help":
		fmt.Fprintf(os.Stdout, usage, serviceNames())
		return nil
	default:
		fmt.Fprintf(os.Stderr, usage, serviceNames())
		return fmt.Errorf("unknown command %q", cmd)
	}
}
