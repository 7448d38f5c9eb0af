"""Lambda entry modules of the training workflow, one per function (handler `<module>.handle`):
each parses its event, builds its dependencies and calls one use case.

trigger        schedule / on-demand event -> decide, lock, start the state machine
preflight      state machine: ListDatasetLabels checks, version description, dataset snapshot
gate           state machine: evaluation gate against the production record
promote        state machine: durable production record (after blue/green start if any)
retention      state machine: delete old versions beyond the configured count
finish         state machine: release the lock with the outcome (success paths)
failure        state machine: report a failure, stop an unpromoted new version, release the lock
execution_end  EventBridge "Step Functions Execution Status Change": backstop for timed-out or
               aborted executions (releases a lock left behind and reports it)
"""
