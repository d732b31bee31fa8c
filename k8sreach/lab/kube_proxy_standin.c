/*
 * Stand-in for the kube-proxy binary on the lab's gateway and node.
 *
 * Built by the lab with gcc at build time, one binary per variant:
 *   -DSTANDIN_GOOD      answers --version like a healthy kube-proxy and exits 0
 *   -DSTANDIN_SEGFAULT  writes through a null pointer, so the kernel kills it with SIGSEGV,
 *                       the way a corrupted copy of a binary dies (no Go runtime output)
 *   -DSTANDIN_PANIC     prints what the Go runtime prints for a nil dereference and exits 2,
 *                       the way a real code bug looks
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#ifndef STANDIN_VERSION
#define STANDIN_VERSION "v1.29.3"
#endif

#if defined(STANDIN_SEGFAULT)
int main(int argc, char **argv)
{
    /* No core file: the lab must not leave dumps behind wherever the command ran. */
    struct rlimit none = {0, 0};
    volatile int *target = NULL;

    (void)argc;
    (void)argv;
    setrlimit(RLIMIT_CORE, &none);
    *target = 1;
    return 0;
}
#elif defined(STANDIN_PANIC)
int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("panic: runtime error: invalid memory address or nil pointer dereference\n"
          "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1d3c5a7]\n"
          "\n"
          "goroutine 1 [running]:\n"
          "k8s.io/kubernetes/cmd/kube-proxy/app.(*ProxyServer).Run(0x0)\n"
          "\tcmd/kube-proxy/app/server.go:874 +0x47\n"
          "k8s.io/kubernetes/cmd/kube-proxy/app.(*Options).runLoop.func1()\n"
          "\tcmd/kube-proxy/app/server.go:415 +0x2b\n"
          "created by k8s.io/kubernetes/cmd/kube-proxy/app.(*Options).runLoop in goroutine 1\n"
          "\tcmd/kube-proxy/app/server.go:413 +0x9d\n",
          stderr);
    return 2;
}
#else
int main(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "--version=true") == 0) {
            printf("Kubernetes %s\n", STANDIN_VERSION);
            return 0;
        }
    }
    fputs("kube-proxy stand-in (k8sreach lab): only --version is implemented\n", stderr);
    return 1;
}
#endif
