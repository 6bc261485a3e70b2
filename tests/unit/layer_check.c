/* Linked with one layer's whole library and only the layers below it
 * (src/meson.build): the link fails when a module reaches up a layer. */
int main(void)
{
	return 0;
}
