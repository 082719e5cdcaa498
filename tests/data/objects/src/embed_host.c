/* A host program embedding BPF objects the way skeletons do (bytes in .rodata); `embed_host dump` writes them out. */
#include <stdio.h>
#include <string.h>
#include "embedded_obj.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "dump") == 0)
		return fwrite(embedded_obj, 1, embedded_obj_len, stdout) == embedded_obj_len ? 0 : 1;
	printf("%u bytes of embedded BPF objects\n", embedded_obj_len);
	return 0;
}
