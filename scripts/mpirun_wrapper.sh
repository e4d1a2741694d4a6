#!/usr/bin/env bash
# One rank of an mpirun job (run_distribute_train_gpu.sh starts it): sets what MindSpore needs from OpenMPI's
# variables, sends the rank's output to its own log, then runs the command.
#   mpirun -n N bash scripts/mpirun_wrapper.sh python train.py --run_distribute True ...
# GPU: rank r uses the GPU of its local rank on its machine (DEVICE_ID).
# CPU (CPU_SCHEDULER=1): MindSpore's CPU collectives need a scheduler process beside the workers, which mpirun does
# not start. Start N+1 processes: OpenMPI rank 0 becomes the scheduler (MS_ROLE=MS_SCHED) on MASTER_ADDR:MASTER_PORT
# [127.0.0.1:8118], ranks 1..N become workers 0..N-1.
# RANK_LOG_DIR: folder for worker_<rank>.log (and scheduler.log); unset: the output stays on mpirun's console.
set -euo pipefail
mpi_rank=${OMPI_COMM_WORLD_RANK:?"run this under OpenMPI's mpirun"}
mpi_size=${OMPI_COMM_WORLD_SIZE}
log_name=worker_$mpi_rank
if [ "${CPU_SCHEDULER:-0}" = 1 ]; then
    export MS_WORKER_NUM=$((mpi_size - 1)) MS_SCHED_HOST=${MASTER_ADDR:-127.0.0.1} MS_SCHED_PORT=${MASTER_PORT:-8118}
    if [ "$mpi_rank" = 0 ]; then
        export MS_ROLE=MS_SCHED
        log_name=scheduler
    else
        export MS_ROLE=MS_WORKER MS_NODE_ID=$((mpi_rank - 1))
        log_name=worker_$((mpi_rank - 1))
    fi
else
    export DEVICE_ID=${OMPI_COMM_WORLD_LOCAL_RANK:-0}
fi
if [ -n "${RANK_LOG_DIR:-}" ]; then
    exec "$@" >"$RANK_LOG_DIR/$log_name.log" 2>&1
fi
exec "$@"
