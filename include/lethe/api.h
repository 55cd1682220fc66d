/* Symbol visibility of the library's API.
 *
 * liblethe is built with -fvisibility=hidden: nothing it defines is exported
 * unless a public header declares it between LETHE_API_BEGIN and
 * LETHE_API_END, as every header under include/lethe/ does around its
 * declarations. liblethe.so then exports exactly the lethe_* API, and the
 * library's internal helpers stay private to it. */
#ifndef LETHE_API_H
#define LETHE_API_H

#if defined(__GNUC__) || defined(__clang__)
#define LETHE_API_BEGIN _Pragma("GCC visibility push(default)")
#define LETHE_API_END _Pragma("GCC visibility pop")
#else
#define LETHE_API_BEGIN
#define LETHE_API_END
#endif

#endif
