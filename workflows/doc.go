// Package workflows holds Relief's Temporal processes. Each subpackage owns its
// contract (task queue, workflow-ID helper, query and update names, status types)
// beside its workflow and activities; this package wires them into a worker.
package workflows
