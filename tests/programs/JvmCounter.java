// JvmCounter: the JVM real program of tests/test_jvm.py. Run with default
// options as `java JvmCounter.java FILE` (the source launcher compiles it).
// Writes "I MILLIS" lines to FILE (kept open, flushed each time) every
// 10 ms, creates `ready` after the 20th, and once `go` exists stops, reads
// FILE back and checks it holds exactly 0..N-1 in order: nothing lost or
// repeated across the checkpoint. Prints "wl: check count ok (N values,
// longest pause P ms)" or a "wl: FAIL" line; exits 0 or 1.
import java.io.*;
import java.nio.file.*;
import java.util.*;

public class JvmCounter {
    public static void main(String[] args) throws Exception {
        long n = 0;
        try (PrintWriter w = new PrintWriter(new FileWriter(args[0]))) {
            for (;; n++) {
                w.println(n + " " + System.currentTimeMillis());
                w.flush();
                if (n == 20)
                    Files.createFile(Paths.get("ready"));
                if (n > 20 && Files.exists(Paths.get("go")))
                    break;
                Thread.sleep(10);
            }
        }
        List<String> lines = Files.readAllLines(Paths.get(args[0]));
        long pause = 0, last = -1;
        for (int i = 0; i < lines.size(); i++) {
            String[] f = lines.get(i).split(" ");
            long t = Long.parseLong(f[1]);
            if (Long.parseLong(f[0]) != i) {
                System.out.println("wl: FAIL count: line " + i + " holds " + f[0]);
                System.exit(1);
            }
            if (last >= 0 && t - last > pause)
                pause = t - last;
            last = t;
        }
        if (lines.size() != n + 1) {
            System.out.println("wl: FAIL count: " + lines.size() + " lines, expected " + (n + 1));
            System.exit(1);
        }
        System.out.println("wl: check count ok (" + lines.size() + " values, longest pause "
                           + pause + " ms)");
    }
}
