/* ctest-labels: cpu */
/* The OpenCL program cache's checksum (runtime/sha256.c) against FIPS 180-4 vectors, and
 * split updates giving the same digest as one. */
#include <string.h>

#include "kd_test_util.h"
#include "sha256.h"

static void test_vectors(void)
{
    char h[65];
    kd_sha256_hex("", 0, h);
    CU_ASSERT_STRING_EQUAL(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    kd_sha256_hex("abc", 3, h);
    CU_ASSERT_STRING_EQUAL(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    kd_sha256_hex(two, strlen(two), h);
    CU_ASSERT_STRING_EQUAL(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a_in_pieces(void)
{
    static char a[1001];
    memset(a, 'a', sizeof a);
    kd_sha256 s;
    unsigned char d[32];
    kd_sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        kd_sha256_update(&s, a, (size_t)(i % 2 ? 999 : 1001)); /* pieces across blocks */
    kd_sha256_final(&s, d);
    static const unsigned char want[32] = {
        0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
        0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    CU_ASSERT(memcmp(d, want, 32) == 0);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("sha256", NULL, NULL);
    CU_add_test(s, "FIPS 180-4 vectors", test_vectors);
    CU_add_test(s, "a million 'a' in uneven pieces", test_million_a_in_pieces);
    return kd_test_main();
}
