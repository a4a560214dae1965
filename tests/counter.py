#!/usr/bin/env python3
"""The seed's counter demo program: prints its pid, then an increasing count
on its terminal about ten times a second, until it is killed."""
import os
import time


def main():
    counter = 0
    print(f"Counter started with PID: {os.getpid()}", flush=True)
    while True:
        print(f"Counter: {counter}", flush=True)
        counter += 1
        time.sleep(0.1)


if __name__ == "__main__":
    main()
