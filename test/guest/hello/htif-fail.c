/* Ends the run through HTIF tohost with failure status 5 (writes (5 << 1) | 1 = 11).
   No UART output, like htif-pass. */
#include "guest.h"

int main(void)
{
    htif_exit(5);
}
