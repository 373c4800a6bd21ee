# Unicorn-backed machine parts: guest RAM, vCPUs, the run loop and the HAL the runtime uses.
