#include <stdio.h>

int main(int argc, char **argv) {
    puts("hello from a Bazel-built image");
    return 0;
}
